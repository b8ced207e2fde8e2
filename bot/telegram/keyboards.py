"""Inline keyboards: under each result, and for the settings commands."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.telegram.callbacks import ResultAction, SettingAction, style_setting
from bot.telegram.texts import style_label
from i18n import LANGUAGE_NAMES, LANGUAGES, t

log = logging.getLogger("animebot.telegram")

STYLES_PER_ROW = 3


def _rows(buttons: Sequence[InlineKeyboardButton], width: int) -> list[list[InlineKeyboardButton]]:
    return [list(buttons[i : i + width]) for i in range(0, len(buttons), width)]


def result_keyboard(
    *,
    input_key: str,
    style: str,
    faces: bool,
    side_by_side: bool,
    styles: Sequence[str],
    lang: str,
) -> InlineKeyboardMarkup | None:
    """Other styles; faces on/off; side by side or not; the full-resolution file. Every button
    renders the cached input again, so nothing is uploaded twice."""

    def button(text: str, op: str, **changes: object) -> InlineKeyboardButton:
        options: dict[str, object] = {"style": style, "faces": faces, "side_by_side": side_by_side}
        options.update(changes)
        action = ResultAction.make(
            "file" if op == "file" else "photo",
            input_key,
            str(options["style"]),
            faces=bool(options["faces"]),
            side_by_side=bool(options["side_by_side"]),
        )
        return InlineKeyboardButton(text, callback_data=action.encode())

    try:
        others = [button(style_label(s, lang), "photo", style=s) for s in styles if s != style]
        toggles = [
            button(
                t("tg.button.faces_off" if faces else "tg.button.faces_on", lang),
                "photo",
                faces=not faces,
            ),
            button(
                t("tg.button.single" if side_by_side else "tg.button.side_by_side", lang),
                "photo",
                side_by_side=not side_by_side,
            ),
        ]
        full = [button(t("tg.button.full_file", lang), "file")]
    except ValueError:  # an input key of another shape: better no buttons than a failure
        log.warning("no buttons: the input key does not fit in callback_data")
        return None
    return InlineKeyboardMarkup([*_rows(others, STYLES_PER_ROW), toggles, full])


def style_keyboard(
    owner: int, styles: Sequence[str], current: str, lang: str
) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            ("✓ " if s == current else "") + style_label(s, lang),
            callback_data=style_setting(owner, s).encode(),
        )
        for s in styles
    ]
    return InlineKeyboardMarkup(_rows(buttons, 2))


def language_keyboard(owner: int, current: str) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            ("✓ " if code == current else "") + LANGUAGE_NAMES[code],
            callback_data=SettingAction("lang", owner, code).encode(),
        )
        for code in LANGUAGES
    ]
    return InlineKeyboardMarkup([buttons])


def forget_keyboard(owner: int, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t("tg.forget.yes", lang),
                    callback_data=SettingAction("forget", owner, "yes").encode(),
                ),
                InlineKeyboardButton(
                    t("tg.forget.no", lang),
                    callback_data=SettingAction("forget", owner, "no").encode(),
                ),
            ]
        ]
    )
