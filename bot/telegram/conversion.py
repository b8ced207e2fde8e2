"""One conversion from a chat's point of view: check the size Telegram reports, download,
convert through the service (status message from its queue reports), reply with the result
and its buttons, or with the translated reason it failed. Shared by messages and buttons.

Every job is stored (`accept`) before its update is confirmed to Telegram, and deleted once
the person has their answer. A shutdown that turns the job away (ShuttingDown) or cuts it
short keeps it stored, with the person told, in one message, that the photo will be done
when the bot is back; `resume_jobs` finishes it at the next start (see README, "Nothing
accepted is lost").
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

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
from service.errors import ShuttingDown
from service.jobs import MAX_AGE_S, MAX_ATTEMPTS, to_the_end
from storage import PendingJob

log = logging.getLogger("animebot.telegram")

NOTICE_S = 3.0  # a job cut short by a shutdown: at most this long to tell the person


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
    durable: bool = False  # stored as a PendingJob (deleted once answered)
    status_message_id: int | None = None  # a message an earlier run left in the chat
    key: str | None = None  # the job's key: what asked (a message, a button press)

    @property
    def id(self) -> str:
        return self.key or self.target.request_id

    def pending(self) -> dict[str, Any]:
        """The parts of a PendingJob only this front end understands."""
        source: dict[str, Any] = (
            {"input_key": self.input_key}
            if self.media is None
            else {
                "kind": self.media.kind,
                "file_id": self.media.file_id,
                "file_size": self.media.file_size,
            }
        )
        return {
            "source": source,
            "options": {
                "style": self.style,
                "faces": self.faces,
                "side_by_side": self.side_by_side,
                "as_file": self.as_file,
            },
            "reply": {
                "reply_to": self.target.reply_to,
                "status_message_id": None,
                "request_id": self.target.request_id,
            },
        }

    @classmethod
    def from_pending(cls, stored: PendingJob) -> Job:
        source, options, reply = stored.source, stored.options, stored.reply
        media = None
        if "file_id" in source:
            media = Media(source["kind"], str(source["file_id"]), source.get("file_size"))
        return cls(
            Target(
                int(stored.chat_id or stored.user_id),
                int(stored.user_id),
                reply_to=reply.get("reply_to"),
                request_id=str(reply.get("request_id") or stored.id),
            ),
            stored.lang,
            media=media,
            input_key=source.get("input_key"),
            style=options.get("style"),
            faces=options.get("faces"),
            side_by_side=bool(options.get("side_by_side")),
            as_file=bool(options.get("as_file")),
            durable=True,
            status_message_id=reply.get("status_message_id"),
            key=stored.id,
        )


async def accept(deps: Deps, job: Job) -> Job:
    """Store the job (committed when this returns): from now on a crash cannot lose it.
    AlreadyAccepted when Telegram delivered the same request again."""
    target = job.target
    stored = await deps.service.jobs.accept(
        PLATFORM,
        target.user_id,
        job.lang,
        key=job.id,
        chat_id=target.chat_id,
        **job.pending(),
    )
    return replace(job, durable=stored is not None)


async def run_job(deps: Deps, bot: Bot, job: Job) -> None:
    """Never raises (except cancellation): every failure becomes a translated reply. A
    durable job is deleted once answered; put off by a shutdown, it stays for the restart."""
    remember = None
    if job.durable:

        async def remember(message_id: int) -> None:
            await deps.service.jobs.update_reply(job.id, status_message_id=message_id)

    status = StatusMessage(
        bot,
        job.target,
        job.lang,
        min_interval_s=deps.options.status_interval_s,
        message_id=job.status_message_id,
        on_sent=remember,
    )
    progress = _Progress()
    try:
        try:
            await _run(deps, bot, job, status, progress)
        except ShuttingDown:
            await _put_off(deps, job, status)
            return
        except Undeliverable:  # the chat refuses messages; recorded by Delivery
            progress.answered = True
        except Exception as exc:
            await status.close()
            await report_failure(deps, bot, job.target, job.lang, exc)
            progress.answered = True
    except asyncio.CancelledError:  # past the grace period: the bot is going down
        if progress.answered:  # the person has the answer: done, not to be run again
            await to_the_end(_done(deps, job, status))
        else:
            await _put_off(deps, job, status)
        raise
    await to_the_end(_done(deps, job, status))


@dataclass
class _Progress:
    answered: bool = False  # the person has the result, or the reason why not


async def _done(deps: Deps, job: Job, status: StatusMessage) -> None:
    """Answered: the job goes (first: it must never run again), then the status message."""
    if job.durable:
        await deps.service.jobs.finish(job.id)
    try:
        async with asyncio.timeout(NOTICE_S):
            await status.close()
    except TimeoutError:
        log.info("request %s: the status message could not be deleted in time", job.id)


async def _put_off(deps: Deps, job: Job, status: StatusMessage) -> None:
    """One message for the person: the photo is done after the restart (a durable job), or
    please send it again (one that could not be stored)."""
    if job.durable:
        text = t("job.deferred", job.lang)
    else:
        text = error_message(ShuttingDown("shutting down"), job.lang)
    shown: int | None = status.message_id
    try:
        async with asyncio.timeout(NOTICE_S):
            shown = await status.replace(text)
    except TimeoutError:
        log.info("request %s: no time left to tell the person about the restart", job.id)
    if job.durable:
        await to_the_end(deps.service.jobs.defer(job.id, status_message_id=shown))


async def resume_jobs(deps: Deps, bot: Bot, stored: list[PendingJob]) -> None:
    """Finish the jobs an earlier process left (crash, or a shutdown out of grace), each in
    its own tracked task; a job tried MAX_ATTEMPTS times or older than a day is given up,
    with one message to the person."""
    for pending in stored:
        job = Job.from_pending(pending)
        # The language stored is the app's; the person may have chosen another.
        job = replace(job, lang=await deps.language_of(int(pending.user_id), job.lang))
        if pending.attempts >= MAX_ATTEMPTS or pending.age_s() > MAX_AGE_S:
            task = asyncio.create_task(_give_up(deps, bot, job), name=f"telegram-give-up-{job.id}")
        else:
            await deps.service.jobs.begin_attempt(pending)
            task = asyncio.create_task(run_job(deps, bot, job), name=f"telegram-resume-{job.id}")
        deps.track(task)
    if stored:
        log.info("resuming %d Telegram job(s) left by the previous run", len(stored))


async def _give_up(deps: Deps, bot: Bot, job: Job) -> None:
    log.warning("request %s: given up after %s attempt(s)", job.id, MAX_ATTEMPTS)
    await _record(deps, job.target, "gave_up")
    status = StatusMessage(bot, job.target, job.lang, message_id=job.status_message_id)
    try:
        await status.replace(t("job.gave_up", job.lang))
    finally:
        await deps.service.jobs.finish(job.id)


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


async def _run(deps: Deps, bot: Bot, job: Job, status: StatusMessage, progress: _Progress) -> None:
    service, target = deps.service, job.target
    limit = min(deps.settings.max_upload_bytes, TELEGRAM_DOWNLOAD_LIMIT)
    if job.media is not None and job.media.file_size is not None and job.media.file_size > limit:
        await _record(deps, target, "too_large")  # refused without downloading it
        raise ImageTooLarge("size reported by Telegram", limit=limit)
    # Shutting down: put off before spending a download on it (recorded as refused).
    await service.check_open(
        PLATFORM, target.user_id, chat_id=target.chat_id, request_id=target.request_id
    )

    action = ChatActionLoop(
        bot, target.chat_id, ChatAction.UPLOAD_DOCUMENT if job.as_file else ChatAction.UPLOAD_PHOTO
    )
    action.start()
    try:
        image = None if job.media is None else await _download(deps, bot, target, job.media)
        if (refused := await action.forbidden()) is not None:
            # The person blocked the bot: nothing is converted and nothing retried.
            await deps.delivery.blocked(target, refused)
            raise Undeliverable(str(refused))
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
        progress.answered = True
    finally:
        await action.stop()


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
