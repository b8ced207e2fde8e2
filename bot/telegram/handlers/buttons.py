"""Inline buttons: result variants (re-using the cached photo) and settings choices."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError

from bot.telegram.callbacks import ResultAction, SettingAction, parse, resolve_style
from bot.telegram.conversion import button_job
from bot.telegram.delivery import PLATFORM, is_not_modified
from bot.telegram.deps import Context, Deps, deps, taken_in, tracked, tracked_job
from bot.telegram.keyboards import language_keyboard, style_keyboard
from bot.telegram.texts import style_label
from i18n import LANGUAGES, t
from service.lifecycle import AlreadyAccepted, Job

log = logging.getLogger("animebot.telegram")

PRESSED = "animebot.buttons_pressed"  # bot_data: result buttons whose conversion is running


async def _answer_query(query: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    """Stop the button's spinner; a query answered too late is not worth a failure."""
    with contextlib.suppress(TelegramError):
        await query.answer(text, show_alert=alert)


@tracked_job
async def on_result_button(update: Update, context: Context) -> None:
    """Another style, faces on/off, side by side, or the full-resolution file: convert the
    cached input again (no re-upload, no download) and reply under the original photo."""
    query = update.callback_query
    if query is None:
        return
    d = deps(context)
    user = query.from_user
    lang = await d.language(user)
    action = parse(query.data)
    style = (
        resolve_style(action.style_token, d.service.styles())
        if isinstance(action, ResultAction)
        else None
    )
    if not isinstance(action, ResultAction) or style is None:
        await _answer_query(query, t("tg.button.expired", lang), alert=True)
        return
    press = _first_press(context, query)
    if press is None:  # a double tap: one result, not two
        await _answer_query(query, t("tg.button.working", lang))
        return
    message = query.message if isinstance(query.message, Message) else None
    chat_id = message.chat_id if message is not None else user.id
    reply_to: int | None = None
    if message is not None:  # under the original photo when it is still there, else the result
        original = message.reply_to_message
        reply_to = original.message_id if original is not None else message.message_id
    job = button_job(
        d.runner.job_key(PLATFORM, f"button:{query.id}"),
        chat_id=chat_id,
        user_id=user.id,
        lang=lang,
        input_key=action.input_key,
        reply_to=reply_to,
        style=style,
        faces=action.faces,
        side_by_side=action.side_by_side,
        as_file=action.op == "file",
        press=press,
    )
    accepted: Job | None = None
    try:
        accepted = await d.runner.accept(job)  # stored before Telegram forgets the press
    except AlreadyAccepted:  # pressed once, delivered again after a crash: resumed already
        return
    finally:
        taken_in(update, context)
        if accepted is None:  # refused at once (and told), or resumed: not running here
            pressed(context).discard(press)
    await _answer_query(query)


def pressed(context: Context) -> set[tuple[Any, ...]]:
    """Buttons whose job is running (the outlet lets go of them when it is answered)."""
    found: set[tuple[Any, ...]] = context.bot_data.setdefault(PRESSED, set())
    return found


def _first_press(context: Context, query: CallbackQuery) -> tuple[Any, ...] | None:
    """None when this button of this message is already being converted; otherwise its key,
    marked until its job is answered."""
    message = query.message
    key = (
        message.chat.id if message is not None else query.from_user.id,
        message.message_id if message is not None else query.inline_message_id,
        query.data,
    )
    running = pressed(context)
    if key in running:
        return None
    running.add(key)
    return key


@tracked
async def on_setting_button(update: Update, context: Context) -> None:
    query = update.callback_query
    if query is None:
        return
    d = deps(context)
    user = query.from_user
    lang = await d.language(user)
    action = parse(query.data)
    if not isinstance(action, SettingAction):
        await _answer_query(query, t("tg.button.expired", lang), alert=True)
        return
    if action.owner != user.id:
        await _answer_query(query, t("tg.button.not_yours", lang), alert=True)
        return
    if action.what == "style":
        styles = d.service.styles()
        style = resolve_style(action.value, styles)
        if style is None:
            await _answer_query(query, t("tg.button.expired", lang), alert=True)
            return
        await d.service.set_prefs(PLATFORM, user.id, style=style)
        await _answer_query(query, style_label(style, lang))
        text = t("tg.style.set", lang, style=style_label(style, lang))
        await _edit(query, text, style_keyboard(user.id, styles, style, lang))
    elif action.what == "lang":
        if action.value not in LANGUAGES:
            await _answer_query(query, t("tg.button.expired", lang), alert=True)
            return
        lang = action.value
        await d.service.set_prefs(PLATFORM, user.id, language=lang)
        await _answer_query(query)
        await _edit(query, t("tg.language.set", lang), language_keyboard(user.id, lang))
    else:
        await _forget(d, query, user.id, lang, confirmed=action.value == "yes")


async def _forget(d: Deps, query: CallbackQuery, user_id: int, lang: str, confirmed: bool) -> None:
    await _answer_query(query)
    if not confirmed:
        await _edit(query, t("tg.forget.cancelled", lang), None)
        return
    counts = await d.service.forget(PLATFORM, user_id)
    log.info("forget: deleted %s", counts)  # counts only: nothing that identifies anyone
    text = t("tg.forget.done", lang, records=counts.get("usage", 0), files=counts.get("files", 0))
    await _edit(query, text, None)


@tracked
async def on_stale_button(update: Update, context: Context) -> None:
    """Any other button (an older version of the bot made it)."""
    query = update.callback_query
    if query is None:
        return
    lang = await deps(context).language(query.from_user)
    await _answer_query(query, t("tg.button.expired", lang), alert=True)


async def _edit(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except TelegramError as exc:
        if not is_not_modified(exc):
            log.debug("could not edit the settings message: %s", exc)
