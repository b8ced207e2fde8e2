"""The Telegram front end's small parts on their own: callback data, style names in captions,
photo limits, API URLs, token redaction, status-message throttling."""

from __future__ import annotations

import hashlib
import logging

import pytest
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.telegram.app import api_urls, webhook_secret
from bot.telegram.callbacks import (
    MAX_BYTES,
    ResultAction,
    SettingAction,
    pack_key,
    parse,
    resolve_style,
    style_setting,
    style_token,
    unpack_key,
)
from bot.telegram.delivery import RetryPolicy, Target, fits_as_photo, is_retryable
from bot.telegram.inputs import addressed_to_bot
from bot.telegram.progress import StatusMessage
from bot.telegram.redact import REDACTED, protect_token
from bot.telegram.texts import style_in_text
from i18n import t
from service.fairqueue import QueueStatus
from tests.standins.telegram_api import TelegramStandIn, make_bot, private_chat
from tests.telegram.helpers import ALICE

KEY = hashlib.sha256(b"some photo").hexdigest()
STYLES = ["hayao", "shinkai", "paprika", "hayao_v2", "shinkai_v2"]


@pytest.mark.parametrize("op", ["photo", "file"])
@pytest.mark.parametrize("faces", [True, False])
@pytest.mark.parametrize("side_by_side", [True, False])
def test_result_actions_round_trip_within_64_bytes(
    op: str, faces: bool, side_by_side: bool
) -> None:
    for style in ("hayao", "a_rather_long_style_name_from_a_user", "ÉcoleDeNice"):
        action = ResultAction.make(
            "photo" if op == "photo" else "file", KEY, style, faces=faces, side_by_side=side_by_side
        )
        data = action.encode()
        assert len(data.encode()) <= MAX_BYTES
        assert parse(data) == action
        assert resolve_style(action.style_token, ["x", style]) == style


def test_keys_pack_to_43_characters() -> None:
    packed = pack_key(KEY)
    assert len(packed) == 43 and unpack_key(packed) == KEY
    with pytest.raises(ValueError):
        pack_key("abc")
    with pytest.raises(ValueError):
        unpack_key("A" * 40)


def test_setting_actions_and_garbage() -> None:
    for action in (
        style_setting(12345, "shinkai"),
        SettingAction("lang", 9_999_999_999, "zh"),
        SettingAction("forget", 1, "yes"),
    ):
        assert parse(action.encode()) == action
    assert style_token("shinkai") == "shinkai"
    assert style_token("Shinkai Night").startswith("#")
    for garbage in (None, "", "hello", "r10:hayao:short", "r20:hayao:" + "A" * 43, "s:x:1:y"):
        assert parse(garbage) is None


@pytest.mark.parametrize(
    ("text", "style"),
    [
        ("make it SHINKAI please", "shinkai"),
        ("Shinkai!", "shinkai"),
        ("hayao or shinkai?", "hayao"),  # the first one named
        ("请用新海诚风格", "shinkai"),
        ("宫崎骏", "hayao"),
        ("в стиле Хаяо", "hayao"),
        ("hayaoish", None),  # a whole word, not a part of one
        ("hayao classic please", "hayao_v2"),  # the longer name wins where both start
        ("Shinkai classic", "shinkai_v2"),
        ("宫崎骏经典风格", "hayao_v2"),
        ("в стиле Паприка", "paprika"),
        ("my cat", None),
        (None, None),
    ],
)
def test_style_named_in_text(text: str | None, style: str | None) -> None:
    assert style_in_text(text, STYLES) == style


def test_photo_limits() -> None:
    assert fits_as_photo(1280, 853, 400_000)
    assert not fits_as_photo(8192, 273, 400_000)  # a side-by-side panorama: too thin
    assert not fits_as_photo(6000, 5000, 400_000)  # sides add up to over 10000
    assert not fits_as_photo(1000, 1000, 11 * 1024 * 1024)


def test_only_5xx_and_network_errors_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # RetryAfter(3) without a deprecation warning
    assert is_retryable(NetworkError("Bad Gateway")) and is_retryable(TimedOut())
    for final in (BadRequest("chat not found"), Forbidden("blocked"), RetryAfter(3), ValueError()):
        assert not is_retryable(final)
    policy = RetryPolicy(attempts=4, base_s=0.5, max_s=2.0)
    assert [round(policy.delay(n) / (0.5 * 2**n), 1) <= 1.25 for n in range(2)] == [True] * 2
    assert policy.delay(10) <= 2.0 * 1.25


def test_api_urls_and_webhook_secret() -> None:
    assert api_urls("http://127.0.0.1:8081") == (
        "http://127.0.0.1:8081/bot",
        "http://127.0.0.1:8081/file/bot",
    )
    assert api_urls("http://h:1/bot/") == ("http://h:1/bot", "http://h:1/file/bot")
    secret = webhook_secret("123:ABCDEFGHIJ")
    assert secret == webhook_secret("123:ABCDEFGHIJ") and "ABCDEFGHIJ" not in secret
    assert len(secret) <= 256 and secret.isalnum()


def test_token_redacted_from_any_record(caplog: pytest.LogCaptureFixture) -> None:
    token = "987654:UNIT-TEST-SECRET-abcdef"
    protect_token(token)
    log = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO):
        log.info("GET https://api.telegram.org/bot%s/getMe", token)
        log.info("file at /file/bot987654%%3AUNIT-TEST-SECRET-abcdef/photo.jpg")
        try:
            raise RuntimeError(f"connect to /bot{token}/sendPhoto failed")
        except RuntimeError:
            log.exception("send failed")
    assert "UNIT-TEST-SECRET" not in caplog.text
    assert caplog.text.count(REDACTED) >= 3


async def test_status_message_edits_are_throttled(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    api.register_chat(private_chat(ALICE))
    now = [100.0]
    async with make_bot(api) as bot:
        status = StatusMessage(
            bot, Target(ALICE["id"], ALICE["id"]), "en", min_interval_s=5.0, clock=lambda: now[0]
        )
        await status.update(QueueStatus(0, 1.0))  # starting at once: no message at all
        assert [c.method for c in api.calls] == ["getMe"]
        await status.update(QueueStatus(3, 2.0))
        await status.update(QueueStatus(2, 1.5))  # within 5 s of the first: deferred
        assert [c.method for c in api.calls if c.method != "getMe"] == ["sendMessage"]
        now[0] += 6.0
        await status.update(QueueStatus(1, 1.0))  # later: edited with the latest
        await status.close()
        await status.update(QueueStatus(0, 0.0))  # after close: ignored
    methods = [c.method for c in api.calls if c.method != "getMe"]
    assert methods == ["sendMessage", "editMessageText", "deleteMessage"]
    edit = api.calls_to("editMessageText")[0]
    assert edit.params["text"] == t("tg.status.queued", "en", position=1, seconds=1)
    assert api.sent_messages(ALICE["id"]) == []


@pytest.mark.parametrize(
    ("caption", "addressed"),
    [
        ("/anime", True),
        ("/anime shinkai", True),
        ("/ANIME@AnimeBot_Test_Bot", True),
        ("/anime@other_bot", False),
        ("/animes", False),
        ("look @animebot_test_bot", True),
        ("@someone look", False),
        (None, False),
    ],
)
def test_pictures_in_groups_must_be_addressed(caption: str | None, addressed: bool) -> None:
    assert addressed_to_bot(caption, "animebot_test_bot") is addressed
