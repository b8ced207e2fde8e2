"""Telegram's outlet and fetcher: how the job runner answers a chat and gets its photo.

Both need only the bot (the token, `telegram.Bot` calls) and the job, so a worker process
without a running Application can deliver too. The outlet shows the chat action while the job
runs, one status message while it waits in the queue (bot/telegram/progress.py) and, for a
clip, the percentage of its frames done, the result with its buttons (a clip in the kind it
was sent: bot/telegram/clips.py), or the translated reason there is none; a job put off by a
shutdown turns its status message into the "done after the restart" notice.

Job fields it uses: `outlet = {"kind": "telegram", "chat_id", "reply_to", "status_message_id",
"as_file", "press"}`, `source = {"kind": "telegram_file", "media", "file_id", "size",
"limit"}` or `{"kind": "cached", "input_key"}`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from bot.telegram.clips import TELEGRAM_UPLOAD_LIMIT, send_clip
from bot.telegram.conversion import upgrade
from bot.telegram.delivery import PLATFORM, Delivery, Target, Undeliverable
from bot.telegram.inputs import TELEGRAM_DOWNLOAD_LIMIT
from bot.telegram.keyboards import result_keyboard
from bot.telegram.progress import ChatActionLoop, StatusMessage
from bot.telegram.texts import result_caption
from core.errors import AnimeBotError, ImageTooLarge
from i18n import error_message, t
from service.clips import ClipReply
from service.convert import ConversionReply
from service.errors import ShuttingDown
from service.fairqueue import QueueStatus
from service.lifecycle import (
    DeliveryError,
    DeliveryFailed,
    DownloadFailed,
    FetchFailed,
    GaveUp,
    Job,
    JobRunner,
    OutletLimits,
)
from service.lifecycle.errors import Expired

log = logging.getLogger("animebot.telegram")

KIND = PLATFORM
# Larger photos go as a file (Delivery); a clip's bit rate fits the bots' upload limit.
LIMITS = OutletLimits(formats=("jpeg", "png"), clip_max_bytes=TELEGRAM_UPLOAD_LIMIT)

Language = Callable[[int, str], Awaitable[str]]


def target_of(job: Job) -> Target:
    outlet = job.outlet
    return Target(
        int(outlet.get("chat_id") or job.chat_id or job.user_id),
        int(job.user_id),
        reply_to=outlet.get("reply_to"),
        request_id=job.request_id,
    )


class TelegramOutlet:
    """One job's answer in one chat (built per execution: it holds the status message)."""

    limits = LIMITS

    def __init__(
        self,
        job: Job,
        *,
        bot: Bot,
        delivery: Delivery,
        runner: JobRunner,
        language: Language,
        status_interval_s: float,
        pressed: set[tuple[Any, ...]] | None = None,
    ) -> None:
        self._bot, self._delivery, self._runner = bot, delivery, runner
        self._language = language
        self._pressed = pressed
        self.target = target_of(job)
        self.lang = job.lang
        self._lang_known = False
        self.as_file = bool(job.outlet.get("as_file"))
        self._started = time.perf_counter()
        self._job = job

        async def remember(message_id: int) -> bool:
            return await runner.remember(self._job, status_message_id=message_id)

        self.status = StatusMessage(
            bot,
            self.target,
            job.lang,
            min_interval_s=status_interval_s,
            message_id=job.outlet.get("status_message_id"),
            on_sent=remember,
        )
        self.clip = job.is_clip
        action = ChatAction.UPLOAD_DOCUMENT if self.as_file else ChatAction.UPLOAD_PHOTO
        if self.clip:
            action = ChatAction.UPLOAD_VIDEO
        self.action = ChatActionLoop(bot, self.target.chat_id, action)

    async def _read_language(self, job: Job) -> None:
        """The job carries the app's language (stored before anything else was read); the
        person may have chosen another."""
        if not self._lang_known:
            self._lang_known = True
            self.lang = await self._language(self.target.user_id, job.lang)
            self.status.set_language(self.lang)

    async def begin(self, job: Job) -> None:
        await self._read_language(job)
        self.action.start()
        refused = await self.action.forbidden()
        if refused is not None:  # blocked: nothing is downloaded or converted for this chat
            kind = "delivery_blocked" if "blocked" in str(refused).lower() else "delivery_forbidden"
            raise DeliveryFailed(kind, str(refused))
        if self.clip:  # a clip takes a while: its percentage from the start
            await self.status.frames(0, 1)

    async def notify(self, job: Job, status: QueueStatus) -> None:
        await self.status.update(status)

    async def deliver(self, job: Job, reply: ConversionReply) -> None:
        markup = None
        if not self.as_file:
            markup = result_keyboard(
                input_key=reply.input_key,
                style=reply.style,
                faces=reply.faces,
                side_by_side=reply.side_by_side,
                styles=self._runner.service.styles(),
                lang=self.lang,
            )
        caption = result_caption(reply, time.perf_counter() - self._started, self.lang)
        try:
            await self._delivery.result(
                self._bot, self.target, reply, caption=caption, markup=markup, as_file=self.as_file
            )
        except Undeliverable as exc:
            raise DeliveryFailed(exc.kind, str(exc)) from exc
        except TelegramError as exc:  # a 400, or still failing after the retries
            log.warning("request %s: result not delivered: %s", job.request_id, exc)
            raise DeliveryFailed("delivery_failed", str(exc)) from exc

    async def frames(self, job: Job, done: int, total: int) -> None:
        await self.status.frames(done, total)

    async def deliver_clip(self, job: Job, reply: ClipReply) -> None:
        media = str(job.source.get("media") or "video")
        try:
            await send_clip(self._delivery, self._bot, self.target, media, reply, self.lang)
        except Undeliverable as exc:
            raise DeliveryFailed(exc.kind, str(exc)) from exc
        except TelegramError as exc:  # a 400, or still failing after the retries
            log.warning("request %s: clip not delivered: %s", job.request_id, exc)
            raise DeliveryFailed("delivery_failed", str(exc)) from exc

    async def fail(self, job: Job, error: AnimeBotError) -> None:
        await self._read_language(job)
        if isinstance(error, GaveUp | Expired):
            await self.status.replace(t("job.gave_up", self.lang))
            return
        await self.status.close()
        if isinstance(error, DownloadFailed | DeliveryError):
            text = t("error.internal", self.lang, ref=job.request_id)
        else:
            text = error_message(error, self.lang)  # InternalError carries its reference
        try:
            await self._delivery.text(self._bot, self.target, text)
        except Undeliverable as exc:
            raise DeliveryFailed(exc.kind, str(exc)) from exc
        except TelegramError as exc:
            log.warning("request %s: could not send the error message: %s", job.request_id, exc)

    async def defer(self, job: Job) -> dict[str, Any]:
        await self._read_language(job)
        if job.durable:
            text = t("job.deferred", self.lang)
        else:
            text = error_message(ShuttingDown("shutting down"), self.lang)
        await self.action.stop()
        shown = await self.status.replace(text)
        return {"status_message_id": shown}

    async def end(self, job: Job) -> None:
        await self.action.stop()
        # A front end may have posted the queue position after this run read the row.
        self.status.adopt(job.outlet.get("status_message_id"))
        await self.status.close()
        if self._pressed is not None and (press := job.outlet.get("press")):
            self._pressed.discard(tuple(press))


async def fetch_file(bot: Bot, delivery: Delivery, job: Job) -> bytes:
    """The photo of a `telegram_file` source, with the retries of every Telegram call."""
    file_id = str(job.source["file_id"])

    async def fetch() -> bytes:
        tg_file = await bot.get_file(file_id)
        return bytes(await tg_file.download_as_bytearray())

    try:
        return await delivery.call(target_of(job), fetch)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            raise ImageTooLarge("getFile: file is too big", limit=TELEGRAM_DOWNLOAD_LIMIT) from exc
        raise FetchFailed("download_failed", str(exc)) from exc
    except (TelegramError, Undeliverable) as exc:
        raise FetchFailed("download_failed", str(exc)) from exc


def register(
    runner: JobRunner,
    bot: Bot,
    delivery: Delivery,
    *,
    language: Language,
    status_interval_s: float = 1.0,
    pressed: set[tuple[Any, ...]] | None = None,
) -> None:
    """Make the runner answer Telegram jobs through `bot` (the token is all it needs)."""

    def outlet(job: Job) -> TelegramOutlet:
        return TelegramOutlet(
            job,
            bot=bot,
            delivery=delivery,
            runner=runner,
            language=language,
            status_interval_s=status_interval_s,
            pressed=pressed,
        )

    async def fetch(job: Job) -> bytes:
        return await fetch_file(bot, delivery, job)

    runner.outlets.register(KIND, outlet)
    runner.fetchers.register("telegram_file", fetch)
    runner.upgrades[KIND] = upgrade
