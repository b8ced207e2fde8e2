"""An update is confirmed to Telegram only once the bot has taken it in.

Telegram forgets an update once a getUpdates call asks for a later offset (long polling), or
once the webhook call that carried it is answered 200. The seed confirmed updates as soon as
they were fetched, so a crash lost every photo that had not been answered yet. Here:

- `Intake` keeps the ids of updates fetched but not yet taken in. A handler that makes a job
  *takes it in* once the job row is committed (`JobRunner.accept`); every other handler
  at its start; `IntakeApplication` for any update once its handlers are done (updates no
  handler wanted included).
- `IntakeBot.get_updates` waits until every update below the offset it is about to confirm
  has been taken in (at most `wait_s`, so one stuck handler cannot stop the bot).
- The webhook server answers Telegram only once its update is taken in.

Taking in costs one small committed write per photo, a few milliseconds, and the handlers of
one batch take their updates in concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ExtBot

log = logging.getLogger("animebot.telegram")

INTAKE_WAIT_S = 10.0


class Intake:
    """Update ids fetched but not taken in yet."""

    def __init__(self, wait_s: float = INTAKE_WAIT_S) -> None:
        self.wait_s = wait_s
        self._open: set[int] = set()
        self._changed = asyncio.Event()

    @property
    def open(self) -> frozenset[int]:
        return frozenset(self._open)

    def fetched(self, update_ids: Iterable[int]) -> None:
        self._open.update(update_ids)

    def settle(self, update_id: int) -> None:
        """The update is taken in (its job is stored, or it makes no job)."""
        if update_id in self._open:
            self._open.discard(update_id)
            self._changed.set()

    async def settled(self, below: int) -> bool:
        """Wait until every fetched update with an id below `below` is taken in (at most
        `wait_s`); False when some were not, and from then on they count as taken in."""

        def waiting() -> list[int]:
            return [u for u in self._open if u < below]

        try:
            async with asyncio.timeout(self.wait_s):
                while waiting():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            late = waiting()
            log.warning(
                "%d update(s) not taken in after %.0f s; confirming them", len(late), self.wait_s
            )
            self._open.difference_update(late)
            return False
        return True


class IntakeBot(ExtBot[Any]):
    """PTB's bot, except that getUpdates first waits for the updates it would confirm."""

    __slots__ = ("_intake",)

    def __init__(
        self, intake: Intake, token: str, *, rate_limiter: AIORateLimiter, **kwargs: Any
    ) -> None:
        super().__init__(token, rate_limiter=rate_limiter, **kwargs)
        self._intake = intake

    @property
    def intake(self) -> Intake:
        return self._intake

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        offset = kwargs.get("offset", args[0] if args else None)
        if offset:  # this call confirms every update below `offset`
            await self._intake.settled(below=int(offset))
        updates = await super().get_updates(*args, **kwargs)
        self._intake.fetched(u.update_id for u in updates)
        return updates


class IntakeApplication(Application[Any, Any, Any, Any, Any, Any]):
    """Every update counts as taken in once its handlers are done, at the latest."""

    async def process_update(self, update: object) -> None:
        try:
            await super().process_update(update)
        finally:
            if isinstance(update, Update) and isinstance(self.bot, IntakeBot):
                self.bot.intake.settle(update.update_id)
