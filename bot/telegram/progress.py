"""What a person sees while their photo is being converted.

- A chat action ("sending a photo…"), repeated every few seconds while the work goes on
  (Telegram shows one for 5 s or until the bot's next message).
- ONE status message, and only when the photo has to wait its turn: the service's fair queue
  calls `on_progress` with the queue position and an ETA; the message is sent at the first
  report, edited at most once per `min_interval_s` with the latest one, and deleted when the
  result is out. A photo converted at once (the usual case, about a second) gets no status
  message at all: nothing flashes up, and no Telegram request is spent on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

from telegram import Bot, Message
from telegram.constants import ChatAction
from telegram.error import Forbidden, TelegramError

from bot.telegram.delivery import Target, is_not_modified
from i18n import t
from service.fairqueue import QueueStatus

log = logging.getLogger("animebot.telegram")

ACTION_REPEAT_S = 4.5


class ChatActionLoop:
    """Send `action` now and every ACTION_REPEAT_S until `stop()`; failures are ignored (the
    result's own send reports a blocked chat)."""

    def __init__(self, bot: Bot, chat_id: int, action: ChatAction) -> None:
        self._bot, self._chat_id, self._action = bot, chat_id, action
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="telegram-chat-action")

    async def _run(self) -> None:
        while True:
            try:
                await self._bot.send_chat_action(self._chat_id, self._action)
            except Forbidden:
                return
            except TelegramError as exc:
                log.debug("chat action failed: %s", exc)
            await asyncio.sleep(ACTION_REPEAT_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class StatusMessage:
    """The one status message of a request; pass `update` as the request's `on_progress`."""

    def __init__(
        self,
        bot: Bot,
        target: Target,
        lang: str,
        *,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bot, self._target, self._lang = bot, target, lang
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._message: Message | None = None
        self._shown: str | None = None
        self._latest: QueueStatus | None = None
        self._last_edit = -math.inf
        self._timer: asyncio.Task[None] | None = None
        self._started = False  # a message was sent, or is being sent
        self._closed = False

    @property
    def message_id(self) -> int | None:
        return None if self._message is None else self._message.message_id

    def text(self, status: QueueStatus) -> str:
        if status.position <= 0:
            return t("tg.status.working", self._lang)
        seconds = max(1, math.ceil(status.eta_s))
        return t("tg.status.queued", self._lang, position=status.position, seconds=seconds)

    async def update(self, status: QueueStatus) -> None:
        if self._closed:
            return
        self._latest = status
        if not self._started and status.position <= 0:
            return  # starting now: a message would only flash up
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
            if self._closed or self._latest is None:
                return
            text = self.text(self._latest)
            if text == self._shown:
                return
            try:
                if self._message is None:
                    self._message = await self._bot.send_message(
                        self._target.chat_id,
                        text,
                        reply_parameters=self._target.reply_parameters,
                        disable_notification=True,
                    )
                else:
                    await self._bot.edit_message_text(
                        text, self._target.chat_id, self._message.message_id
                    )
                self._shown = text
            except TelegramError as exc:  # a status line is never worth failing a request
                if not is_not_modified(exc):
                    log.debug("status message update failed: %s", exc)
            finally:
                self._last_edit = self._clock()

    async def close(self) -> None:
        """No more updates; delete the message if one was sent (waits for a send in flight)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        async with self._lock:
            message, self._message = self._message, None
        if message is not None:
            try:
                await self._bot.delete_message(self._target.chat_id, message.message_id)
            except TelegramError as exc:
                log.debug("status message delete failed: %s", exc)
