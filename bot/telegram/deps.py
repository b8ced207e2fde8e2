"""What every handler needs, kept in `application.bot_data` (PTB's place for shared state)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram import Update, User
from telegram.ext import ContextTypes

from bot.telegram.delivery import PLATFORM, Delivery, RetryPolicy
from bot.telegram.intake import Intake
from bot.telegram.previews import PreviewAlbum
from i18n import LANGUAGES, normalize_language
from service.convert import ConversionService
from service.lifecycle import JobRunner
from service.runtime import Runtime
from service.settings import Settings

KEY = "animebot"

Context = ContextTypes.DEFAULT_TYPE
HandlerCallback = Callable[[Update, Context], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class FrontEndOptions:
    """Tuning knobs; the defaults suit production, tests shorten the waits."""

    status_interval_s: float = 1.0  # at most one status-message edit per chat this often
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # 5xx / network errors
    rate_limit_retries: int = 3  # AIORateLimiter: retries after 429 retry_after
    poll_timeout_s: float = 30.0  # long polling


@dataclass
class Deps:
    runtime: Runtime
    options: FrontEndOptions
    delivery: Delivery
    intake: Intake = field(default_factory=Intake)
    previews: PreviewAlbum = field(default_factory=PreviewAlbum)
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count `task` among the work a graceful stop waits for (and may cut short)."""
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    @property
    def service(self) -> ConversionService:
        return self.runtime.service

    @property
    def runner(self) -> JobRunner:
        return self.runtime.runner

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    async def language(self, user: User | None) -> str:
        """The person's chosen language, else their Telegram app's language."""
        if user is None:
            return normalize_language(None)
        return await self.language_of(user.id, normalize_language(user.language_code))

    async def language_of(self, user_id: int, fallback: str) -> str:
        """The language person `user_id` chose, else `fallback`."""
        prefs = await self.service.prefs(PLATFORM, user_id)
        return str(prefs.language) if prefs.language in LANGUAGES else fallback


def deps(context: Context) -> Deps:
    found = context.application.bot_data[KEY]
    assert isinstance(found, Deps)
    return found


def tracked(callback: HandlerCallback) -> HandlerCallback:
    """Register the running handler so a graceful stop can wait for it (and, past the grace
    period, cancel it). Its update counts as taken in at once: it makes no job."""
    return _tracked(callback, takes_in_at_start=True)


def tracked_job(callback: HandlerCallback) -> HandlerCallback:
    """Like `tracked`, for a handler that makes a job: it calls `taken_in(update, context)`
    once the job is stored, so the update is not confirmed to Telegram before."""
    return _tracked(callback, takes_in_at_start=False)


def taken_in(update: Update, context: Context) -> None:
    deps(context).intake.settle(update.update_id)


def _tracked(callback: HandlerCallback, *, takes_in_at_start: bool) -> HandlerCallback:
    @functools.wraps(callback)
    async def run(update: Update, context: Context) -> None:
        task = asyncio.current_task()
        d = deps(context)
        if takes_in_at_start:
            d.intake.settle(update.update_id)
        if task is not None:
            d.inflight.add(task)
        try:
            await callback(update, context)
        finally:
            if task is not None:
                d.inflight.discard(task)

    return run
