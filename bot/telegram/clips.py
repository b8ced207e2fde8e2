"""Clips in Telegram: animations (Telegram's GIFs are soundless MP4s), videos, round video
notes, video stickers (WebM) and videos sent as files. Each is a job of the job runner
(`clip_job`, `options["clip"]`): stored before the update is confirmed, converted whole by the
clip service wherever the runner's workers are (this process, or `animebot worker` with the
shared queue), resumed after a crash or a restart like a photo, and answered in kind by the
outlet (`send_clip`): an animation for animations, a video sticker (WebM VP9, 512 px, at most
3 s) for a video sticker, a round video note for a video note, a video (with its sound)
otherwise. The status message shows the percentage of frames done (bot/telegram/progress.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from telegram import Bot, InputFile, Message
from telegram.ext import filters

from bot.telegram.conversion import file_job
from bot.telegram.delivery import Delivery, Target, Undeliverable
from bot.telegram.texts import style_label
from i18n import clip_notes
from service.clips import ClipReply
from service.lifecycle import Job
from service.lifecycle.job import CLIP

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


def clip_job(
    request_id: str,
    *,
    chat_id: int,
    user_id: int,
    lang: str,
    clip: ClipMedia,
    reply_to: int | None,
    style: str | None = None,
) -> Job:
    """A clip sent to the bot (or named by `/anime` in reply to it): refetchable by its
    `file_id` after a crash; `source["media"]` says how to answer it."""
    return file_job(
        request_id,
        chat_id=chat_id,
        user_id=user_id,
        lang=lang,
        media=clip,
        reply_to=reply_to,
        options={CLIP: True, "style": style, "sticker": clip.kind == "sticker"},
    )


AnswerKind = Literal["video_note", "animation", "video", "sticker"]


def _shared(r: ClipReply) -> dict[str, Any]:
    return {"duration": max(1, round(r.clip.seconds)), "filename": f"anime_{r.style}.{r.clip.ext}"}


@dataclass(frozen=True)
class _Answer:
    """How one kind of answer is sent: the Bot method, and its arguments beyond the chat, the
    file and the reply (from the reply and its caption)."""

    method: str
    args: Callable[[ClipReply, str], dict[str, Any]]
    captioned: bool = True  # False: the notes go in a message of their own


_ANSWERS: dict[AnswerKind, _Answer] = {
    "video_note": _Answer(
        "send_video_note", lambda r, _c: {**_shared(r), "length": r.clip.width}, captioned=False
    ),
    "animation": _Answer(
        "send_animation",
        lambda r, c: {**_shared(r), "width": r.clip.width, "height": r.clip.height, "caption": c},
    ),
    "video": _Answer(
        "send_video",
        lambda r, c: {
            **_shared(r),
            "width": r.clip.width,
            "height": r.clip.height,
            "caption": c,
            "supports_streaming": True,
        },
    ),
    "sticker": _Answer("send_sticker", lambda _r, _c: {}, captioned=False),
}


def answer_kind(media: str, reply: ClipReply) -> AnswerKind:
    """A video sticker for a video sticker (when the service could make WebM), a round video
    note for a (square) video note, an animation for animations and soundless clips, a video
    otherwise."""
    if reply.clip.ext == "webm":
        return "sticker"
    if media == "video_note" and reply.clip.width == reply.clip.height:
        return "video_note"
    if media in ("animation", "sticker") or not reply.clip.has_audio:
        return "animation"
    return "video"


async def send_clip(
    delivery: Delivery, bot: Bot, target: Target, media: str, reply: ClipReply, lang: str
) -> Message:
    """The converted clip, in the kind `media` was sent as, replying to it; the notes (cut,
    scaled down...) in its caption, or in a message of their own for a sticker or a video
    note. Raises Undeliverable when the chat refuses it."""
    clip = reply.clip
    notes = clip_notes(
        reply.notes,
        lang,
        seconds=round(clip.seconds, 1),
        side=max(clip.width, clip.height),
        fps=clip.fps,
    )
    caption = " ".join([style_label(reply.style, lang), *notes])
    how = _ANSWERS[answer_kind(media, reply)]
    send: Callable[..., Awaitable[Message]] = getattr(bot, how.method)
    data: Any = clip.data
    if how.method == "send_sticker":  # no filename argument: the name says it is WebM
        data = InputFile(clip.data, filename=f"anime_{reply.style}.{clip.ext}")
    sent = await delivery.call(
        target,
        lambda: send(
            target.chat_id,
            data,
            reply_parameters=target.reply_parameters,
            **how.args(reply, caption),
        ),
    )
    if not how.captioned and notes:  # a sticker or video note carries no caption
        with contextlib.suppress(Undeliverable):  # the clip itself arrived
            await delivery.text(bot, target, " ".join(notes))
    return sent
