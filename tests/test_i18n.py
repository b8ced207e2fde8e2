"""The catalogues stay complete and consistent, and no error leaks raw exception text."""

from __future__ import annotations

import string

import pytest

import i18n
from core import errors
from service.errors import Busy, InternalError, QuotaExceeded, RateLimited


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != "en"])
def test_every_language_has_every_key_with_the_same_placeholders(lang: str) -> None:
    english, other = i18n.catalogue("en"), i18n.catalogue(lang)
    assert set(other) == set(english), set(other) ^ set(english)
    for key, text in english.items():
        assert fields(other[key]) == fields(text), key


@pytest.mark.parametrize(
    ("code", "lang"),
    [("zh-hans", "zh"), ("ru-RU", "ru"), ("en_GB", "en"), ("de", "en"), (None, "en")],
)
def test_language_codes_normalise(code: str | None, lang: str) -> None:
    assert i18n.normalize_language(code) == lang


SECRET = "Traceback: secret path /etc/passwd"


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
@pytest.mark.parametrize(
    "exc",
    [
        errors.EmptyInput(SECRET),
        errors.NotAnImage(SECRET),
        errors.DamagedImage(SECRET),
        errors.UnsupportedImage(SECRET),
        errors.ImageTooLarge(SECRET, pixels=400_000_000, limit=40_000_000),
        errors.ImageTooLarge(SECRET, limit=20 * 1024 * 1024),
        errors.ImageTooSmall(SECRET, min_side=16),
        errors.UnknownStyle("picasso", ["hayao", "shinkai"]),
        errors.ModelFileError(SECRET),
        Busy(SECRET, retry_after_s=12.2),
        RateLimited(SECRET, retry_after_s=3),
        QuotaExceeded(SECRET, retry_after_s=7200),
        InternalError("abc123"),
        ValueError(SECRET),
    ],
)
def test_every_error_has_a_translated_message_without_the_exception_text(
    exc: BaseException, lang: str
) -> None:
    text = i18n.error_message(exc, lang)
    assert SECRET not in text and "Traceback" not in text
    assert "{" not in text and text.strip()


def test_messages_carry_the_useful_numbers() -> None:
    assert "13" in i18n.error_message(Busy("x", retry_after_s=12.2), "en")
    assert "40" in i18n.error_message(errors.ImageTooLarge("x", pixels=4e8, limit=40_000_000), "ru")
    assert "abc123" in i18n.error_message(InternalError("abc123"), "zh")
    assert "hayao, shinkai" in i18n.error_message(
        errors.UnknownStyle("x", ["hayao", "shinkai"]), "en"
    )
    assert i18n.t("error.empty", "zh") != i18n.t("error.empty", "en")
