"""What a person sees while their photo is being converted.

- A chat action ("sending a photo…"), repeated every few seconds while the work goes on
  (Telegram shows one for 5 s or until the bot's next message).
- ONE status message, and only when the photo has to wait its turn: the service's fair queue
  calls `on_progress` with the queue position and an ETA; the message is sent at the first
  report, edited at most once per `min_interval_s` with the latest one, and deleted when the
  result is out. A photo converted at once (the usual case, about a second) gets no status
  message at all: nothing flashes up, and no Telegram request is spent on it.
- A clip's job shows the percentage of frames done in that same message ("Animating your
  clip… N%", `frames`), from the start (0%) to the end, edited at most once per
  `min_interval_s`, whichever process converts it.
- A job resumed after a restart adopts the message an earlier run left (a status message or
  the "restarting" notice): it is edited as the job moves and deleted with the result, so no
  stale "in the queue" stays behind. `replace()` turns the message into a final notice.
- With the shared queue, the front end posts the queue position while a worker may already
  run the job; the durable row decides who deletes that message (`on_sent`, `adopt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import Forbidden, TelegramError

from bot.telegram.delivery import Target, is_not_modified
from i18n import t
from service.fairqueue import QueueStatus

log = logging.getLogger("animebot.telegram")

ACTION_REPEAT_S = 4.5


class ChatActionLoop:
    """Send `action` now and every ACTION_REPEAT_S until `stop()`. A chat that refuses it
    (403: the person blocked the bot) ends the loop; `forbidden()` tells the job, which then
    stops before converting anything. Other failures are ignored."""

    def __init__(self, bot: Bot, chat_id: int, action: ChatAction) -> None:
        self._bot, self._chat_id, self._action = bot, chat_id, action
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[Forbidden | None] | None = None
        self._forbidden: Forbidden | None = None

    def start(self) -> None:
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name="telegram-chat-action")

    async def forbidden(self) -> Forbidden | None:
        """The 403 the chat answered, if it did: waits for the first send's answer."""
        if self._first is not None:
            await asyncio.shield(self._first)
        return self._forbidden

    async def _run(self) -> None:
        try:
            while True:
                try:
                    await self._bot.send_chat_action(self._chat_id, self._action)
                except Forbidden as exc:
                    self._forbidden = exc
                    return
                except TelegramError as exc:
                    log.debug("chat action failed: %s", exc)
                finally:
                    if self._first is not None and not self._first.done():
                        self._first.set_result(None)
                await asyncio.sleep(ACTION_REPEAT_S)
        finally:
            if self._first is not None and not self._first.done():
                self._first.set_result(None)

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
        message_id: int | None = None,
        on_sent: Callable[[int], Awaitable[bool]] | None = None,
    ) -> None:
        """`message_id`: a message an earlier run left, adopted as this one's. `on_sent`: told
        the id of a message sent, so whoever finishes the job deletes it (after a crash, or
        in another process); it answers False when the job was answered meanwhile, and then
        nobody else will: this status message deletes itself at once."""
        self._bot, self._target, self._lang = bot, target, lang
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._on_sent = on_sent
        self._lock = asyncio.Lock()
        self._message_id: int | None = message_id
        self._others: set[int] = set()  # posted by another process for this request
        self._shown: str | None = None
        self._latest: QueueStatus | None = None
        self._percent: int | None = None  # a clip's frames done, once it reported some
        self._last_edit = -math.inf
        self._timer: asyncio.Task[None] | None = None
        self._started = message_id is not None  # a message was sent, or is being sent
        self._closed = False

    @property
    def message_id(self) -> int | None:
        return self._message_id

    def set_language(self, lang: str) -> None:
        """The person's own choice, once it is read (the job started with the app's)."""
        self._lang = lang

    def text(self, status: QueueStatus) -> str:
        if status.position <= 0:
            return t("tg.status.working", self._lang)
        seconds = max(1, math.ceil(status.eta_s))
        return t("tg.status.queued", self._lang, position=status.position, seconds=seconds)

    def current_text(self) -> str | None:
        """What the message should say now: a clip's percentage once it has one, else the
        queue status (None before either)."""
        if self._percent is not None:
            return t("clip.progress", self._lang, percent=self._percent)
        return None if self._latest is None else self.text(self._latest)

    async def update(self, status: QueueStatus) -> None:
        if self._closed:
            return
        self._latest = status
        if not self._started and status.position <= 0:
            return  # starting now: a message would only flash up
        await self._changed()

    async def frames(self, done: int, total: int) -> None:
        """A clip's progress: shown from the first report on (0% included: a clip takes
        long enough to say so), as a percentage of the frames."""
        if self._closed:
            return
        self._percent = 100 * max(0, done) // max(1, total)
        await self._changed()

    async def _changed(self) -> None:
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
            text = None if self._closed else self.current_text()
            if text is None or text == self._shown:
                return
            try:
                if not await self._show(text):  # the job was answered meanwhile
                    self._closed = True
                    await self._delete(self._message_id)
                    self._message_id = None
            except TelegramError as exc:  # a status line is never worth failing a request
                if not is_not_modified(exc):
                    log.debug("status message update failed: %s", exc)
            finally:
                self._last_edit = self._clock()

    async def _show(self, text: str) -> bool:
        """Edit the message (or send it the first time); the caller holds the lock. False
        when `on_sent` says the job was answered before it learnt of the new message."""
        kept = True
        if self._message_id is None:
            sent = await self._bot.send_message(
                self._target.chat_id,
                text,
                reply_parameters=self._target.reply_parameters,
                disable_notification=True,
            )
            self._message_id = sent.message_id
            if self._on_sent is not None:
                kept = await self._on_sent(sent.message_id)
        else:
            await self._bot.edit_message_text(text, self._target.chat_id, self._message_id)
        self._shown = text
        return kept

    async def _stop_updates(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer

    async def replace(self, text: str) -> int | None:
        """No more updates; the message says `text` from now on (edited, or sent if there was
        none) and stays. Its id, or None when Telegram refused both."""
        await self._stop_updates()
        async with self._lock:
            try:
                await self._show(text)
            except TelegramError as exc:
                if is_not_modified(exc):
                    return self._message_id
                log.debug("status notice failed: %s", exc)
                if self._message_id is None:
                    return None
                self._message_id = None  # the old message is gone: send a new one
                try:
                    await self._show(text)
                except TelegramError as again:
                    log.debug("status notice failed: %s", again)
            return self._message_id

    def adopt(self, message_id: int | None) -> None:
        """A status message of this request that another process posted (the front end's
        queue position, learnt from the durable row at the end): `close` deletes it too."""
        if message_id is not None and message_id != self._message_id:
            self._others.add(int(message_id))

    async def close(self) -> None:
        """No more updates; delete the message if one was sent (waits for a send in flight),
        and those adopted."""
        await self._stop_updates()
        async with self._lock:
            message_id, self._message_id = self._message_id, None
        others, self._others = self._others - {message_id}, set()
        for one in (message_id, *sorted(others)):
            await self._delete(one)

    async def _delete(self, message_id: int | None) -> None:
        if message_id is not None:
            try:
                await self._bot.delete_message(self._target.chat_id, message_id)
            except TelegramError as exc:
                log.debug("status message delete failed: %s", exc)
