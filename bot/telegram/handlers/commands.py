"""/start /help /style /faces /language /privacy /forget /stats, and unknown commands."""

from __future__ import annotations

import contextlib

from telegram import Update

from bot.telegram.delivery import PLATFORM, Undeliverable
from bot.telegram.deps import Context, deps, tracked
from bot.telegram.handlers.common import answer, command_target
from bot.telegram.keyboards import forget_keyboard, language_keyboard, style_keyboard
from bot.telegram.texts import command_list, stats_summary, style_label, style_list
from i18n import t


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@tracked
async def start(update: Update, context: Context) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    prefs = await d.service.prefs(PLATFORM, user.id)
    style = style_label(prefs.style or d.service.default_style(), lang)
    text = t("tg.start", lang, name=user.first_name, style=style)
    await answer(d, context, command_target(message, user), text)


@tracked
async def help_command(update: Update, context: Context) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    text = t(
        "tg.help",
        lang,
        commands=command_list(lang),
        styles=style_list(d.service.styles(), lang),
    )
    await answer(d, context, command_target(message, user), text)


@tracked
async def style(update: Update, context: Context) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    prefs = await d.service.prefs(PLATFORM, user.id)
    current = prefs.style or d.service.default_style()
    styles = d.service.styles()
    target = command_target(message, user)
    previews = [(s, path) for s in styles if (path := d.service.style_preview(s)) is not None]
    try:
        await d.previews.send(d.delivery, context.bot, target, previews, lang)
    except Undeliverable:
        return
    text = t("tg.style.choose", lang, style=style_label(current, lang))
    markup = style_keyboard(user.id, styles, current, lang)
    await answer(d, context, target, text, markup)


@tracked
async def faces(update: Update, context: Context) -> None:
    """Toggle face enhancement (on by default) and say what it is now."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    prefs = await d.service.prefs(PLATFORM, user.id)
    now_on = not (prefs.faces if prefs.faces is not None else True)
    await d.service.set_prefs(PLATFORM, user.id, faces=now_on)
    text = t("tg.faces.now_on" if now_on else "tg.faces.now_off", lang)
    await answer(d, context, command_target(message, user), text)


@tracked
async def language(update: Update, context: Context) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    markup = language_keyboard(user.id, lang)
    await answer(d, context, command_target(message, user), t("tg.language.choose", lang), markup)


@tracked
async def privacy(update: Update, context: Context) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    text = t(
        "tg.privacy",
        lang,
        input_hours=_number(d.settings.input_ttl_hours),
        result_days=_number(d.settings.result_ttl_days),
    )
    await answer(d, context, command_target(message, user), text)


@tracked
async def forget(update: Update, context: Context) -> None:
    """Ask first; the button (for this person only) deletes (see buttons.py)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    markup = forget_keyboard(user.id, lang)
    await answer(d, context, command_target(message, user), t("tg.forget.confirm", lang), markup)


@tracked
async def stats(update: Update, context: Context) -> None:
    """Admins (TELEGRAM_ADMINS): a chart of the last 30 days and a short summary."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    target = command_target(message, user)
    if not d.runner.is_admin(PLATFORM, user.id):
        await answer(d, context, target, t("tg.stats.denied", lang))
        return
    summary = await d.service.stats(days=30)
    chart = await d.service.stats_chart(days=30)
    caption = stats_summary(summary, lang)
    with contextlib.suppress(Undeliverable):
        await d.delivery.call(
            target,
            lambda: context.bot.send_photo(
                target.chat_id,
                chart,
                caption=caption,
                filename="stats.png",
                reply_parameters=target.reply_parameters,
            ),
        )


@tracked
async def unknown(update: Update, context: Context) -> None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    d = deps(context)
    lang = await d.language(user)
    await answer(d, context, command_target(message, user), t("tg.unknown_command", lang))
