"""Clips in Telegram: animations (Telegram's GIFs are soundless MP4s), videos, round video
notes, video stickers (WebM) and videos sent as files. Each is converted whole through
the service's clip entry point (`runtime.clips`, which keeps the request's one usage row) and
answered in kind: an animation for animations, a video sticker (WebM VP9, 512 px, at most
3 s) for a video sticker, a round video note for a video note, a video (with its sound)
otherwise. A status message shows the
percentage of frames done. Not durable: a clip interrupted by a restart is not resumed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from telegram import Bot, InputFile, Message, Update, User
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import filters

from bot.telegram.delivery import PLATFORM, Target, Undeliverable, is_not_modified
from bot.telegram.deps import Context, Deps, deps, tracked
from bot.telegram.handlers.common import answer
from bot.telegram.inputs import TELEGRAM_DOWNLOAD_LIMIT, addressed_to_bot
from bot.telegram.texts import style_in_text, style_label
from core.errors import AnimeBotError, ImageTooLarge
from i18n import clip_notes, error_message, t
from service.clips import ClipReply, ClipRequest

log = logging.getLogger("animebot.telegram")

# Bots may upload files up to 50 MB (https://core.telegram.org/bots/api#sending-files).
TELEGRAM_UPLOAD_LIMIT = 50 * 1024 * 1024
CLIPS = (
    filters.ANIMATION
    | filters.VIDEO
    | filters.VIDEO_NOTE
    | filters.Sticker.VIDEO
    | filters.Document.VIDEO
)

ClipKind = Literal["animation", "video", "video_note", "sticker", "document"]


@dataclass(frozen=True)
class ClipMedia:
    kind: ClipKind
    file_id: str
    file_size: int | None


def clip_of(message: Message) -> ClipMedia | None:
    """The clip in `message` (an animation also carries a document: it counts as one)."""
    if message.animation is not None:
        a = message.animation
        return ClipMedia("animation", a.file_id, a.file_size)
    if message.video_note is not None:
        n = message.video_note
        return ClipMedia("video_note", n.file_id, n.file_size)
    if message.video is not None:
        v = message.video
        return ClipMedia("video", v.file_id, v.file_size)
    if message.sticker is not None and message.sticker.is_video:
        s = message.sticker
        return ClipMedia("sticker", s.file_id, s.file_size)
    if message.document is not None and (message.document.mime_type or "").startswith("video/"):
        d = message.document
        return ClipMedia("document", d.file_id, d.file_size)
    return None


class ClipStatus:
    """One status message: "Animating your clip… N%", edited at most every `interval_s`."""

    def __init__(self, bot: Bot, target: Target, lang: str, interval_s: float) -> None:
        self._bot, self._target, self._lang = bot, target, lang
        self._interval_s = interval_s
        self._message_id: int | None = None
        self._shown = -1
        self._last = -math.inf

    async def start(self) -> None:
        await self._show(0)

    async def frames(self, done: int, total: int) -> None:
        percent = 100 * done // max(1, total)
        if percent != self._shown and time.monotonic() - self._last >= self._interval_s:
            await self._show(percent)

    async def _show(self, percent: int) -> None:
        text = t("clip.progress", self._lang, percent=percent)
        self._last = time.monotonic()
        try:
            if self._message_id is None:
                sent = await self._bot.send_message(
                    self._target.chat_id,
                    text,
                    reply_parameters=self._target.reply_parameters,
                    disable_notification=True,
                )
                self._message_id = sent.message_id
            else:
                await self._bot.edit_message_text(text, self._target.chat_id, self._message_id)
            self._shown = percent
        except TelegramError as exc:  # a status line is never worth failing a request
            if not is_not_modified(exc):
                log.debug("clip status update failed: %s", exc)

    async def close(self) -> None:
        message_id, self._message_id = self._message_id, None
        if message_id is not None:
            try:
                await self._bot.delete_message(self._target.chat_id, message_id)
            except TelegramError as exc:
                log.debug("clip status delete failed: %s", exc)


@tracked
async def on_clip(update: Update, context: Context) -> None:
    """A clip: convert every frame and answer with the same kind of message."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    if message.chat.type != ChatType.PRIVATE and not addressed_to_bot(
        message.caption, context.bot.username
    ):
        return
    clip = clip_of(message)
    if clip is None:
        return
    d = deps(context)
    target = Target(message.chat_id, user.id, reply_to=message.message_id)
    style = style_in_text(message.caption, d.service.styles())
    await answer_clip(d, context, user, message, clip, style, target)


async def answer_clip(
    d: Deps,
    context: Context,
    user: User,
    source: Message,
    clip: ClipMedia,
    style: str | None,
    target: Target,
) -> None:
    """Convert the clip in `source` and answer in kind (also for `/anime` in reply to it):
    refusals and failures get a translated message and a recorded row, never a traceback."""
    lang = await d.language(user)
    clips = d.runtime.clips
    limit = min(TELEGRAM_DOWNLOAD_LIMIT, clips.max_upload_bytes)
    if clip.file_size is not None and clip.file_size > limit:
        exc = ImageTooLarge("clip too large to download", limit=limit)
        await clips.refuse(
            PLATFORM, user.id, exc, chat_id=source.chat_id, request_id=target.request_id
        )
        await answer(d, context, target, error_message(exc, lang))
        return
    status = ClipStatus(context.bot, target, lang, d.options.status_interval_s)
    await status.start()
    try:
        reply = await _convert(d, context, clip, source, style, target, status)
    except AnimeBotError as exc:
        await status.close()
        await answer(d, context, target, error_message(exc, lang))
        return
    except TelegramError:  # the download failed (Telegram's side)
        log.warning("request %s: clip download failed", target.request_id, exc_info=True)
        await clips.refuse(
            PLATFORM,
            user.id,
            "download_failed",
            chat_id=source.chat_id,
            request_id=target.request_id,
        )
        await status.close()
        await answer(d, context, target, t("error.internal", lang, ref=target.request_id))
        return
    try:
        await _send(d, context.bot, target, clip, reply, lang)
    except Undeliverable as exc:  # the row written by the conversion says so now
        await clips.undelivered(PLATFORM, target.request_id, exc.kind)
    finally:
        await status.close()


async def _convert(
    d: Deps,
    context: Context,
    clip: ClipMedia,
    message: Message,
    style: str | None,
    target: Target,
    status: ClipStatus,
) -> ClipReply:
    file = await context.bot.get_file(clip.file_id)
    data = bytes(await file.download_as_bytearray())
    clips = d.runtime.clips
    return await clips.convert(
        ClipRequest(
            PLATFORM,
            target.user_id,
            data,
            chat_id=message.chat_id,
            style=style,
            max_output_bytes=TELEGRAM_UPLOAD_LIMIT,
            sticker=clip.kind == "sticker" and clips.makes_stickers,
            is_admin=clips.is_admin(PLATFORM, target.user_id),
            on_frames=status.frames,
            request_id=target.request_id,
        )
    )


AnswerKind = Literal["video_note", "animation", "video", "sticker"]


def _shared(r: ClipReply) -> dict[str, Any]:
    return {"duration": max(1, round(r.seconds)), "filename": f"anime_{r.style}.{r.ext}"}


@dataclass(frozen=True)
class _Answer:
    """How one kind of answer is sent: the Bot method, and its arguments beyond the chat, the
    file and the reply (from the reply and its caption)."""

    method: str
    args: Callable[[ClipReply, str], dict[str, Any]]
    captioned: bool = True  # False: the notes go in a message of their own


_ANSWERS: dict[AnswerKind, _Answer] = {
    "video_note": _Answer(
        "send_video_note", lambda r, _c: {**_shared(r), "length": r.width}, captioned=False
    ),
    "animation": _Answer(
        "send_animation",
        lambda r, c: {**_shared(r), "width": r.width, "height": r.height, "caption": c},
    ),
    "video": _Answer(
        "send_video",
        lambda r, c: {
            **_shared(r),
            "width": r.width,
            "height": r.height,
            "caption": c,
            "supports_streaming": True,
        },
    ),
    "sticker": _Answer("send_sticker", lambda _r, _c: {}, captioned=False),
}


def answer_kind(clip: ClipMedia, reply: ClipReply) -> AnswerKind:
    """A video sticker for a video sticker (when the service could make WebM), a round video
    note for a (square) video note, an animation for animations and soundless clips, a video
    otherwise."""
    if reply.ext == "webm":
        return "sticker"
    if clip.kind == "video_note" and reply.width == reply.height:
        return "video_note"
    if clip.kind in ("animation", "sticker") or not reply.has_audio:
        return "animation"
    return "video"


async def _send(
    d: Deps, bot: Bot, target: Target, clip: ClipMedia, reply: ClipReply, lang: str
) -> Message:
    notes = clip_notes(
        reply.notes,
        lang,
        seconds=round(reply.seconds, 1),
        side=max(reply.width, reply.height),
        fps=reply.fps,
    )
    caption = " ".join([style_label(reply.style, lang), *notes])
    how = _ANSWERS[answer_kind(clip, reply)]
    send: Callable[..., Awaitable[Message]] = getattr(bot, how.method)
    media: Any = reply.data
    if how.method == "send_sticker":  # no filename argument: the name says it is WebM
        media = InputFile(reply.data, filename=f"anime_{reply.style}.{reply.ext}")
    sent = await d.delivery.call(
        target,
        lambda: send(
            target.chat_id,
            media,
            reply_parameters=target.reply_parameters,
            **how.args(reply, caption),
        ),
    )
    if not how.captioned and notes:  # a sticker or video note carries no caption
        with contextlib.suppress(Undeliverable):  # the clip itself arrived
            await d.delivery.text(bot, target, " ".join(notes))
    return sent
