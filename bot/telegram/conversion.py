"""One conversion from a chat's point of view: check the size Telegram reports, download,
convert through the service (status message from its queue reports), reply with the result
and its buttons, or with the translated reason it failed. Shared by messages and buttons."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import BadRequest, TelegramError

from bot.telegram.delivery import PLATFORM, Target, Undeliverable
from bot.telegram.deps import Deps
from bot.telegram.inputs import TELEGRAM_DOWNLOAD_LIMIT, Media
from bot.telegram.keyboards import result_keyboard
from bot.telegram.progress import ChatActionLoop, StatusMessage
from bot.telegram.texts import result_caption
from core.errors import AnimeBotError, ImageTooLarge
from i18n import error_message, t
from service.convert import ConversionReply, ConversionRequest

log = logging.getLogger("animebot.telegram")


class DownloadFailed(Exception):
    """Telegram would not give us the file (after retries); already recorded."""


@dataclass(frozen=True)
class Job:
    target: Target  # carries the request id, which the service, the logs and errors share
    lang: str
    media: Media | None = None  # a file to download, or ...
    input_key: str | None = None  # ... a photo the service has cached (buttons)
    style: str | None = None  # None: the person's preference
    faces: bool | None = None
    side_by_side: bool = False
    as_file: bool = False  # the full-resolution PNG as a document
    started: float = field(default_factory=time.perf_counter)


async def run_job(deps: Deps, bot: Bot, job: Job) -> None:
    """Never raises (except cancellation): every failure becomes a translated reply."""
    try:
        await _run(deps, bot, job)
    except Undeliverable:
        return  # the chat refuses messages; recorded by Delivery
    except Exception as exc:
        await report_failure(deps, bot, job.target, job.lang, exc)


async def report_failure(
    deps: Deps, bot: Bot, target: Target, lang: str, exc: BaseException
) -> None:
    ref = target.request_id
    if isinstance(exc, AnimeBotError):
        text = error_message(exc, lang)  # InternalError carries its reference itself
    else:
        if not isinstance(exc, DownloadFailed):
            log.error("request %s failed in the Telegram front end", ref, exc_info=exc)
        text = t("error.internal", lang, ref=ref)
    try:
        await deps.delivery.text(bot, target, text)
    except Undeliverable:
        pass
    except TelegramError as send_exc:
        log.warning("request %s: could not send the error message: %s", ref, send_exc)


async def _run(deps: Deps, bot: Bot, job: Job) -> None:
    service, target = deps.service, job.target
    limit = min(deps.settings.max_upload_bytes, TELEGRAM_DOWNLOAD_LIMIT)
    if job.media is not None and job.media.file_size is not None and job.media.file_size > limit:
        await _record(deps, target, "too_large")  # refused without downloading it
        raise ImageTooLarge("size reported by Telegram", limit=limit)

    action = ChatActionLoop(
        bot, target.chat_id, ChatAction.UPLOAD_DOCUMENT if job.as_file else ChatAction.UPLOAD_PHOTO
    )
    status = StatusMessage(bot, target, job.lang, min_interval_s=deps.options.status_interval_s)
    action.start()
    try:
        image = None if job.media is None else await _download(deps, bot, target, job.media)
        reply = await service.convert(
            ConversionRequest(
                platform=PLATFORM,
                user_id=target.user_id,
                chat_id=target.chat_id,
                image=image,
                input_key=None if image is not None else job.input_key,
                style=job.style,
                faces=job.faces,
                side_by_side=job.side_by_side,
                fmt="png" if job.as_file else "jpeg",
                is_admin=service.is_admin(PLATFORM, target.user_id),
                on_progress=status.update,
                request_id=target.request_id,
            )
        )
        await _deliver(deps, bot, job, reply)
    finally:
        await action.stop()
        await status.close()


async def _deliver(deps: Deps, bot: Bot, job: Job, reply: ConversionReply) -> None:
    markup = None
    if not job.as_file:
        markup = result_keyboard(
            input_key=reply.input_key,
            style=reply.style,
            faces=reply.faces,
            side_by_side=reply.side_by_side,
            styles=deps.service.styles(),
            lang=job.lang,
        )
    caption = result_caption(reply, time.perf_counter() - job.started, job.lang)
    try:
        await deps.delivery.result(
            bot, job.target, reply, caption=caption, markup=markup, as_file=job.as_file
        )
    except (Undeliverable, BadRequest):
        raise
    except TelegramError:  # still failing after the retries: count it, then report it
        await _record(deps, job.target, "delivery_failed")
        raise
    log.debug(
        "request %s: %s delivered (%s, %.0f ms in the service)",
        job.target.request_id,
        reply.style,
        "cache" if reply.cache_hit else "computed",
        reply.total_ms,
    )


async def _download(deps: Deps, bot: Bot, target: Target, media: Media) -> bytes:
    async def fetch() -> bytes:
        tg_file = await bot.get_file(media.file_id)
        return bytes(await tg_file.download_as_bytearray())

    try:
        return await deps.delivery.call(target, fetch)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            await _record(deps, target, "too_large")
            raise ImageTooLarge("getFile: file is too big", limit=TELEGRAM_DOWNLOAD_LIMIT) from exc
        await _record(deps, target, "download_failed")
        log.warning("request %s: download refused: %s", target.request_id, exc)
        raise DownloadFailed(str(exc)) from exc
    except TelegramError as exc:
        await _record(deps, target, "download_failed")
        log.warning("request %s: download failed: %s", target.request_id, exc)
        raise DownloadFailed(str(exc)) from exc


async def _record(deps: Deps, target: Target, kind: str) -> None:
    await deps.service.record_failure(
        PLATFORM, target.user_id, kind, chat_id=target.chat_id, request_id=target.request_id
    )
