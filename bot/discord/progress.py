"""What a person sees on Discord while their photo waits its turn (the Telegram bot's status
message, mirrored).

A conversion defers publicly ("animebot is thinking…"). When the service's fair queue reports
that a photo has to wait, that deferred response is edited to show its place in the queue and an
ETA, then edited as it moves (at most once per `min_interval_s`). When the result is posted (a
new message) the status message is deleted; an error deletes it too (`respond.send_error`). A
photo converted at once gets no status at all: the "thinking" message is simply replaced by the
result, as before. The Anime-fy menu converts up to four photos of one interaction: the status
shows the one nearest the front of the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

import discord

from i18n import t
from service.fairqueue import QueueStatus

log = logging.getLogger("animebot.discord")

_KEY = "animebot.waiting_notice"  # Interaction.extras key


class WaitingNotice:
    """The queue status of one interaction, shown by editing its deferred response."""

    def __init__(
        self,
        interaction: discord.Interaction[discord.Client],
        lang: str,
        *,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interaction = interaction
        self._lang = lang
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._latest: dict[int, QueueStatus] = {}  # per conversion of this interaction
        self._shown: str | None = None
        self._started = False  # a photo of the interaction had to wait: the status is on
        self._last_edit = -math.inf
        self._timer: asyncio.Task[None] | None = None
        self._closed = False
        self._ids = 0

    @property
    def shown(self) -> bool:
        """Whether the deferred response was edited into a status message."""
        return self._shown is not None

    def reporter(self) -> Callable[[QueueStatus], Awaitable[None]]:
        """An `on_progress` callback for one conversion of the interaction."""
        self._ids += 1
        key = self._ids

        async def report(status: QueueStatus) -> None:
            await self._update(key, status)

        return report

    def text(self) -> str | None:
        waiting = [s for s in self._latest.values() if s.position > 0]
        if not waiting:
            return t("dc.status.working", self._lang)
        first = min(waiting, key=lambda s: s.position)
        seconds = max(1, math.ceil(first.eta_s))
        return t("dc.status.queued", self._lang, position=first.position, seconds=seconds)

    async def _update(self, key: int, status: QueueStatus) -> None:
        if self._closed:
            return
        self._latest[key] = status
        if not self._started and status.position <= 0:
            return  # starting now: a status would only flash up
        self._started = True
        wait = self._last_edit + self._min_interval_s - self._clock()
        if wait > 0:
            if self._timer is None or self._timer.done():
                self._timer = asyncio.create_task(self._flush_later(wait))
            return
        await self._flush()

    async def _flush_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            text = None if self._closed else self.text()
            if text is None or text == self._shown:
                return
            try:
                await self._interaction.edit_original_response(content=text)
                self._shown = text
            except discord.HTTPException as exc:  # a status line is never worth failing for
                log.debug("queue status edit failed (HTTP %s)", exc.status)
            finally:
                self._last_edit = self._clock()

    async def close(self) -> bool:
        """No more edits (waits for one in flight); returns whether a status was shown."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        async with self._lock:
            return self._shown is not None


def waiting_notice(interaction: discord.Interaction[discord.Client], lang: str) -> WaitingNotice:
    """The interaction's notice, created on first use (shared by the menu's conversions)."""
    notice = interaction.extras.get(_KEY)
    if not isinstance(notice, WaitingNotice):
        notice = WaitingNotice(interaction, lang)
        interaction.extras[_KEY] = notice
    return notice


async def close_waiting_notice(interaction: discord.Interaction[discord.Client]) -> bool:
    """Stop the interaction's queue status; whether one was shown (the deferred response is
    then a status message, no longer "thinking", and the result comes as a new message)."""
    notice = interaction.extras.pop(_KEY, None)
    return await notice.close() if isinstance(notice, WaitingNotice) else False
