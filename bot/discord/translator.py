"""Languages: Discord locales to our catalogue, and command text localized at sync time.

Command and option descriptions, choice names and the context menu's name are `locale_str`s
whose `key` extra names a catalogue entry; `CatalogueTranslator` fills Discord's
`*_localizations` from the catalogue when the tree syncs. Command and option *names* stay
English so they are the same everywhere (and in the docs).
"""

from __future__ import annotations

import discord
from discord import app_commands

from i18n import DEFAULT_LANGUAGE, LANGUAGES, VARIANTS, catalogue, normalize_language, t


def language(interaction: discord.Interaction[discord.Client]) -> str:
    """The catalogue language for the person who used the interaction ("zh-CN" -> "zh";
    "zh-TW", Traditional Chinese, is a catalogue variant of its own)."""
    locale = interaction.locale.value
    return locale if locale in VARIANTS else normalize_language(locale)


def catalogue_language(locale: discord.Locale) -> str | None:
    """The catalogue language for a Discord locale, or None when we have none for it."""
    if locale.value in VARIANTS:
        return locale.value
    base = locale.value.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def text(key: str) -> app_commands.locale_str:
    """Command text: English from the catalogue, translated by `CatalogueTranslator`."""
    return app_commands.locale_str(t(key, DEFAULT_LANGUAGE), key=key)


def style_choice_name(name: str, title: str) -> app_commands.locale_str | str:
    """A style choice's display name: catalogued styles are translated, others keep their title."""
    key = f"style.{name}"
    if key in catalogue(DEFAULT_LANGUAGE):
        return text(key)
    return title


class CatalogueTranslator(app_commands.Translator):
    """Translates `locale_str`s carrying a catalogue `key` into our languages."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        lang = catalogue_language(locale)
        if not isinstance(key, str) or lang is None or lang == DEFAULT_LANGUAGE:
            return None
        if key not in catalogue(lang) and key not in catalogue(VARIANTS.get(lang, lang)):
            return None
        translated = t(key, lang)
        return None if translated == string.message else translated
