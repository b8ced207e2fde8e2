"""Pictures in: photos, image files, static stickers (albums arrive as one message per photo),
clips (videos, animations, video notes, video stickers: bot/telegram/clips.py), `/anime
[style]` in reply to an earlier picture or clip, and a short answer for everything else."""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ChatType

from bot.telegram.clips import clip_job, clip_of
from bot.telegram.conversion import photo_job
from bot.telegram.delivery import PLATFORM, Target
from bot.telegram.deps import Context, Deps, deps, taken_in, tracked, tracked_job
from bot.telegram.handlers.common import answer, command_target
from bot.telegram.inputs import Media, Unsupported, addressed_to_bot, media_of
from bot.telegram.texts import style_in_text
from i18n import normalize_language, t
from service.lifecycle import AlreadyAccepted, Job

_UNSUPPORTED_KEYS: dict[Unsupported | None, str] = {
    "document": "tg.unsupported.document",
    "animated_sticker": "tg.unsupported.animated_sticker",
    "other": "tg.unsupported.media",
    None: "tg.other",
}


def message_key(d: Deps, message: Message) -> str:
    """A job's key: the message that asked (the same again if Telegram delivers it again)."""
    return d.runner.job_key(PLATFORM, f"{message.chat_id}:{message.message_id}")


async def take_in(d: Deps, update: Update, context: Context, job: Job) -> None:
    """Hand the job to the runner (stored, then dispatched), then let Telegram forget the
    update. Storing touches nothing else (the job carries the app's language until the
    outlet reads the person's own choice), so updates are confirmed within milliseconds."""
    try:
        await d.runner.accept(job)
    except AlreadyAccepted:  # delivered again after a crash: the resumed job answers it
        return
    finally:
        taken_in(update, context)


@tracked_job
async def on_media(update: Update, context: Context) -> None:
    """A photo, a file or a sticker: convert it (a caption may name the style)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    if message.chat.type != ChatType.PRIVATE and not addressed_to_bot(
        message.caption, context.bot.username
    ):
        return  # a picture in a group that was not meant for the bot
    d = deps(context)
    target = Target(message.chat_id, user.id, reply_to=message.message_id)
    found = media_of(message)
    if isinstance(found, Media):
        job = photo_job(
            message_key(d, message),
            chat_id=message.chat_id,
            user_id=user.id,
            lang=normalize_language(user.language_code),
            media=found,
            reply_to=message.message_id,
            style=style_in_text(message.caption, d.service.styles()),
        )
        await take_in(d, update, context, job)
    else:
        taken_in(update, context)
        await answer(d, context, target, t(_UNSUPPORTED_KEYS[found], await d.language(user)))


@tracked_job
async def on_clip(update: Update, context: Context) -> None:
    """A clip: every frame converted, answered with the same kind of message."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    clip = clip_of(message)
    if clip is None or (
        message.chat.type != ChatType.PRIVATE
        and not addressed_to_bot(message.caption, context.bot.username)
    ):
        taken_in(update, context)
        return
    d = deps(context)
    job = clip_job(
        message_key(d, message),
        chat_id=message.chat_id,
        user_id=user.id,
        lang=normalize_language(user.language_code),
        clip=clip,
        reply_to=message.message_id,
        style=style_in_text(message.caption, d.service.styles()),
    )
    await take_in(d, update, context, job)


@tracked_job
async def on_anime(update: Update, context: Context) -> None:
    """`/anime [style]` as a reply to an earlier picture or clip."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    source: Message | None = message.reply_to_message
    clip = clip_of(source) if source is not None else None
    if source is not None and clip is not None:  # a job like a clip sent directly
        job = clip_job(
            message_key(d, message),
            chat_id=message.chat_id,
            user_id=user.id,
            lang=normalize_language(user.language_code),
            clip=clip,
            reply_to=source.message_id,
            style=_style_of(d, context),
        )
        await take_in(d, update, context, job)
        return
    found = media_of(source)
    if not isinstance(found, Media):  # no picture to convert (source None: found None)
        taken_in(update, context)
        lang = await d.language(user)
        key = "tg.anime.usage" if found is None else _UNSUPPORTED_KEYS[found]
        await answer(d, context, command_target(message, user), t(key, lang))
        return
    assert source is not None
    style = _style_of(d, context)
    job = photo_job(
        message_key(d, message),
        chat_id=message.chat_id,
        user_id=user.id,
        lang=normalize_language(user.language_code),
        media=found,
        reply_to=source.message_id,
        style=style,
    )
    await take_in(d, update, context, job)


def _style_of(d: Deps, context: Context) -> str | None:
    """The style `/anime` names. A name the bot does not know goes to the service, which
    answers with the list."""
    if not context.args:
        return None
    return style_in_text(" ".join(context.args), d.service.styles()) or context.args[0]


@tracked
async def on_other(update: Update, context: Context) -> None:
    """Text, voice, location, video…: say what the bot does."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    found = media_of(message)
    key = "tg.other" if isinstance(found, Media) else _UNSUPPORTED_KEYS[found]
    await answer(d, context, command_target(message, user), t(key, lang))
