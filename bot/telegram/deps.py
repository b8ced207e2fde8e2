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
from i18n import LANGUAGES, normalize_language
from service.convert import ConversionService
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
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def service(self) -> ConversionService:
        return self.runtime.service

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    async def language(self, user: User | None) -> str:
        """The person's chosen language, else their Telegram app's language."""
        if user is None:
            return normalize_language(None)
        prefs = await self.service.prefs(PLATFORM, user.id)
        if prefs.language in LANGUAGES:
            return str(prefs.language)
        return normalize_language(user.language_code)


def deps(context: Context) -> Deps:
    found = context.application.bot_data[KEY]
    assert isinstance(found, Deps)
    return found


def tracked(callback: HandlerCallback) -> HandlerCallback:
    """Register the running handler so a graceful stop can wait for it (and, past the grace
    period, cancel it)."""

    @functools.wraps(callback)
    async def run(update: Update, context: Context) -> None:
        task = asyncio.current_task()
        inflight = deps(context).inflight
        if task is not None:
            inflight.add(task)
        try:
            await callback(update, context)
        finally:
            if task is not None:
                inflight.discard(task)

    return run
