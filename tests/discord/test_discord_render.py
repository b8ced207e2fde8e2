"""Unit tests of the pieces without Discord: file sizing, packing, translations, catalogue."""

from __future__ import annotations

import io

import discord
import numpy as np
import pytest
from discord import app_commands
from PIL import Image

from bot.discord.conversion import safe_stem
from bot.discord.render import MAX_FILES_PER_MESSAGE, OutFile, fit_to_limit, pack, style_label
from bot.discord.translator import CatalogueTranslator, catalogue_language, style_choice_name, text
from core.imageio import encode
from i18n import LANGUAGES, catalogue, t


def noisy(width: int, height: int, alpha: bool = False, fmt: str = "png") -> bytes:
    rng = np.random.default_rng(width * height)
    rgb = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    a = np.full((height, width), 128, np.uint8) if alpha else None
    return encode(rgb, a, fmt=fmt).data


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_a_file_within_the_limit_is_left_alone() -> None:
    data = noisy(64, 48)
    assert fit_to_limit(data, len(data)) == (data, False)


@pytest.mark.parametrize("limit", [60_000, 20_000, 4_000])
def test_a_file_over_the_limit_is_recompressed_then_downscaled_to_fit(limit: int) -> None:
    data = noisy(480, 320)
    assert len(data) > limit
    fitted = fit_to_limit(data, limit)
    assert fitted is not None
    out, recompressed = fitted
    assert recompressed and len(out) <= limit
    im = opened(out)
    assert im.format == "JPEG" and im.width <= 480
    assert abs(im.width / im.height - 1.5) < 0.05  # aspect ratio kept
    assert not im.info.get("exif") and not im.info.get("icc_profile")


def test_transparency_is_flattened_onto_white_when_recompressing() -> None:
    data = noisy(200, 200, alpha=True)
    fitted = fit_to_limit(data, len(data) // 3)
    assert fitted is not None
    im = opened(fitted[0])
    assert im.mode == "RGB"
    assert np.asarray(im).mean() > 150  # half-transparent noise over white: light


def test_nothing_fits_an_impossible_limit() -> None:
    assert fit_to_limit(noisy(200, 200), 100) is None
    assert fit_to_limit(b"not an image at all", 5) is None


def test_pack_keeps_order_and_splits_by_size_and_count() -> None:
    files = [OutFile(b"x" * n, f"{i}.jpg") for i, n in enumerate([40, 50, 30, 80, 10])]
    groups = pack(files, 100)
    assert [[f.filename for f in g] for g in groups] == [
        ["0.jpg", "1.jpg"],
        ["2.jpg"],
        ["3.jpg", "4.jpg"],
    ]
    many = [OutFile(b"x", f"{i}.jpg") for i in range(MAX_FILES_PER_MESSAGE + 3)]
    assert [len(g) for g in pack(many, 10_000)] == [MAX_FILES_PER_MESSAGE, 3]
    assert pack([], 100) == []


def test_spoilers_stay_spoilers() -> None:
    file = OutFile(b"data", "anime.jpg", spoiler=True).to_discord()
    assert file.filename == "SPOILER_anime.jpg"


def test_safe_stems_work_in_attachment_urls() -> None:
    assert safe_stem("My Photo (1).JPG") == "My_Photo_1"
    assert safe_stem("фото.png") == "image"
    assert safe_stem("../../etc/passwd") == "passwd"


@pytest.mark.parametrize(
    ("locale", "lang"),
    [
        (discord.Locale.chinese, "zh"),
        (discord.Locale.taiwan_chinese, "zh-TW"),  # Traditional: a catalogue of its own
        (discord.Locale.russian, "ru"),
        (discord.Locale.american_english, "en"),
        (discord.Locale.german, None),
    ],
)
def test_discord_locales_map_to_catalogues(locale: discord.Locale, lang: str | None) -> None:
    assert catalogue_language(locale) == lang


async def test_translator_fills_in_our_languages_only() -> None:
    translator = CatalogueTranslator()
    context = app_commands.TranslationContext(app_commands.TranslationContextLocation.other, None)
    string = text("dc.cmd.anime.description")
    assert string.message == t("dc.cmd.anime.description", "en")
    zh = await translator.translate(string, discord.Locale.chinese, context)
    assert zh == t("dc.cmd.anime.description", "zh")
    ru = await translator.translate(string, discord.Locale.russian, context)
    assert ru == t("dc.cmd.anime.description", "ru")
    for other in (discord.Locale.american_english, discord.Locale.german, discord.Locale.japanese):
        assert await translator.translate(string, other, context) is None
    plain = app_commands.locale_str("no key")
    assert await translator.translate(plain, discord.Locale.russian, context) is None


def test_styles_without_a_catalogue_entry_keep_their_title() -> None:
    assert style_choice_name("cubism", "Cubism") == "Cubism"
    assert str(style_choice_name("hayao", "Hayao")) == t("style.hayao", "en")
    assert style_label("cubism", "ru", {"cubism": "Cubism"}) == "Cubism"
    assert style_label("hayao", "ru", {}) == t("style.hayao", "ru")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_command_texts_fit_discords_limits(lang: str) -> None:
    texts = catalogue(lang)
    for key in (k for k in texts if k.startswith("dc.cmd.")):
        assert 1 <= len(texts[key]) <= 100, key  # descriptions
    assert 1 <= len(texts["dc.cmd.menu"]) <= 32  # a context menu's name
    for key in ("style.hayao", "style.shinkai"):
        assert 1 <= len(texts[key]) <= 100  # choice names
