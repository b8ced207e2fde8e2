"""Rate limits, server errors, blocked users, the status message, concurrency, graceful stop,
webhook mode, and a token that never reaches the logs."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from telegram.error import InvalidToken

from bot.telegram.webhook import SECRET_HEADER
from i18n import t
from service.runtime import Runtime
from tests.standins.telegram_api import make_user, private_chat
from tests.telegram.helpers import (
    ALICE,
    BORIS,
    Harness,
    StartBot,
    matches,
    replies_to,
    synthetic_jpeg,
)


@asynccontextmanager
async def all_workers_busy(runtime: Runtime) -> AsyncIterator[asyncio.Event]:
    """Hold every slot of the service's fair queue (as long conversions would) until the
    yielded event is set, so photos sent meanwhile wait their turn."""
    release = asyncio.Event()
    held = [asyncio.Event() for _ in range(runtime.settings.workers)]

    async def hold(n: int) -> None:
        async with runtime.service.queue.slot(f"someone-else-{n}"):
            held[n].set()
            await release.wait()

    tasks = [asyncio.create_task(hold(n)) for n in range(len(held))]
    for event in held:
        await event.wait()
    try:
        yield release
    finally:
        release.set()
        await asyncio.gather(*tasks)


async def test_429_on_send_photo_is_retried_and_delivered(
    bot: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB's RetryAfter: no deprecation warning
    api = bot.api
    api.fail_next("sendPhoto", 429, retry_after=1)
    sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=1))
    await api.wait_for("sendPhoto", replies_to(sent), count=2, timeout=15)
    statuses = [c.status for c in api.calls_to("sendPhoto")]
    assert statuses == [429, 200]
    failed, ok = api.calls_to("sendPhoto")
    assert ok.time - failed.time >= 1.0  # PTB's AIORateLimiter waited retry_after
    assert ok.files["photo"] == failed.files["photo"]


async def test_5xx_and_network_errors_are_retried(bot: Harness) -> None:
    api = bot.api
    api.fail_next("getFile", 500)
    api.fail_next("sendPhoto", 502, count=2)
    sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=2))
    await api.wait_for("sendPhoto", replies_to(sent), count=3)
    assert [c.status for c in api.calls_to("getFile")] == [500, 200]
    assert [c.status for c in api.calls_to("sendPhoto")] == [502, 502, 200]
    (row,) = await bot.rows_of(ALICE)
    assert row["status"] == "ok"

    api.fail_next("sendPhoto", 500, count=10)  # never recovers: bounded, then recorded
    sent = await api.send_photo(BORIS, None, synthetic_jpeg(seed=3))
    attempts = bot.front.options.retry.attempts
    await api.wait_for("sendPhoto", replies_to(sent), count=attempts)
    (answer,) = await api.wait_for("sendMessage", replies_to(sent))
    assert matches("error.internal", "ru", answer.params["text"])
    rows = await bot.rows_of(BORIS)
    # One row per request: the conversion's row says the delivery failed (updated, not added).
    assert [(r["status"], r["error_kind"]) for r in rows] == [("error", "delivery_failed")]
    assert rows[0]["request_id"] in answer.params["text"]  # the reference the log carries
    assert len(api.calls_to("sendPhoto")) == 3 + attempts


async def test_blocked_user_is_recorded_and_not_retried(bot: Harness) -> None:
    api = bot.api
    api.fail_next("sendPhoto", 403)
    sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=4))
    (refused,) = await api.wait_for("sendPhoto", replies_to(sent))
    assert refused.status == 403

    await api.user_blocks_bot(BORIS)  # blocked before the photo is even answered
    await api.send_photo(BORIS, private_chat(BORIS), synthetic_jpeg(seed=5))
    await api.wait_for("sendChatAction", lambda c: c.chat_id == BORIS["id"])
    await bot.settled()  # the refusal is recorded right after the call
    rows = [(r["status"], r["error_kind"]) for r in await bot.rows_of(ALICE)]
    assert rows == [("error", "delivery_blocked")]  # one row per request: updated, not added
    # Boris: the first 403 (on the chat action) ends it: no conversion, one row (item 5).
    rows = [(r["status"], r["error_kind"]) for r in await bot.rows_of(BORIS)]
    assert rows == [("error", "delivery_blocked")]
    assert [c.status for c in api.calls_to("sendChatAction") if c.chat_id == BORIS["id"]] == [403]
    assert len(api.calls_to("sendPhoto")) == 1  # Alice's one try: 403 is final
    assert not api.calls_to("sendMessage")  # and no error message to a closed chat


async def test_status_message_edited_then_deleted(start_bot: StartBot) -> None:
    harness = await start_bot(workers=1)
    api = harness.api
    async with all_workers_busy(harness.runtime) as release:
        sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=6))
        (status,) = await api.wait_for("sendMessage", replies_to(sent))
        assert matches("tg.status.queued", "en", status.params["text"])
        assert "1" in status.params["text"]  # one job ahead of it
        hold_result = api.hold_next("sendPhoto")
        release.set()  # its turn comes
        (edit,) = await api.wait_for("editMessageText")
    assert edit.params["text"] == t("tg.status.working", "en")
    assert edit.params["message_id"] == status.result["message_id"]
    hold_result.set()
    (delete,) = await api.wait_for("deleteMessage")
    assert delete.params["message_id"] == status.result["message_id"]
    photo_call = next(c for c in api.calls_to("sendPhoto") if c.ok)
    assert photo_call.time <= delete.time  # the result first, then the status goes
    assert [m["message_id"] for m in api.sent_messages(ALICE["id"])] == [
        photo_call.result["message_id"]
    ]


async def test_a_photo_sent_at_once_gets_no_status_message(bot: Harness) -> None:
    sent = await bot.api.send_photo(ALICE, None, synthetic_jpeg(seed=7))
    await bot.api.wait_for("sendPhoto", replies_to(sent))
    assert not bot.api.calls_to("sendMessage") and not bot.api.calls_to("deleteMessage")


async def test_a_waiting_conversion_does_not_block_other_chats(start_bot: StartBot) -> None:
    harness = await start_bot(workers=1)
    api = harness.api
    async with all_workers_busy(harness.runtime):
        sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=8))
        await api.wait_for("sendMessage", replies_to(sent))  # queued
        await api.send_text(BORIS, None, "/help")
        (answer,) = await api.wait_for("sendMessage", lambda c: c.chat_id == BORIS["id"])
        assert answer.ok and not api.calls_to("sendPhoto")  # answered while Alice waits
    await api.wait_for("sendPhoto", replies_to(sent))


async def test_the_token_never_reaches_the_logs(
    bot: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    api = bot.api
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    httpx_logger = logging.getLogger("httpx")
    before = httpx_logger.level
    httpx_logger.setLevel(logging.DEBUG)  # even when someone turns request logging back on
    try:
        with caplog.at_level(logging.DEBUG):
            api.fail_next("sendPhoto", 502)
            sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=9))
            await api.wait_for("sendPhoto", replies_to(sent), count=2)
    finally:
        httpx_logger.setLevel(before)
    secret = api.token.split(":", 1)[1]  # also catches the URL-encoded token of downloads
    records = caplog.records
    assert any(r.name == "httpx" and "[redacted]" in r.getMessage() for r in records)
    assert secret not in caplog.text
    leaks = [(r.name, r.getMessage()[:300]) for r in records if secret in r.getMessage()]
    assert not leaks


async def test_graceful_stop_answers_a_conversion_in_flight(start_bot: StartBot) -> None:
    harness = await start_bot(workers=1)
    api = harness.api
    async with all_workers_busy(harness.runtime) as release:
        sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=10))
        await api.wait_for("sendMessage", replies_to(sent))  # its handler is in flight
        since = api.mark()
        stopping = asyncio.create_task(harness.front.stop())
        # Polling stops first: PTB confirms the last offset with a getUpdates of timeout 0.
        await api.wait_for("getUpdates", lambda c: not c.params.get("timeout"), since=since)
        assert not stopping.done()
        release.set()
        await stopping
    (reply,) = [c for c in api.calls_to("sendPhoto") if c.reply_to_message_id == sent["message_id"]]
    assert reply.ok
    assert not harness.front.running and not harness.front.application.running


async def test_stop_is_bounded_by_the_grace_period(start_bot: StartBot) -> None:
    harness = await start_bot(workers=1, shutdown_grace_s=0.2)
    api = harness.api
    async with all_workers_busy(harness.runtime):
        sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=11))
        (status,) = await api.wait_for("sendMessage", replies_to(sent))
        started = time.monotonic()
        await harness.front.stop()  # the queue never frees up: the photo is put off
        assert time.monotonic() - started < 5
    # One message for Alice: her status message now says the photo is done after the restart.
    (notice,) = api.calls_to("editMessageText")
    assert notice.params["text"] == t("job.deferred", "en")
    assert notice.params["message_id"] == status.result["message_id"]
    assert len(api.sent_messages(ALICE["id"])) == 1
    rows = await harness.rows_of(ALICE)
    assert [(r["status"], r["error_kind"]) for r in rows] == [("refused", "shutting_down")]
    (kept,) = await harness.runtime.service.jobs.pending("telegram")  # for the next start
    assert kept.reply["status_message_id"] == status.result["message_id"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode(start_bot: StartBot) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    harness = await start_bot(telegram_webhook_url=url, telegram_webhook_port=port)
    api, front = harness.api, harness.front
    assert api.webhook is not None
    assert api.webhook["url"] == url
    assert api.webhook["secret_token"] == front.webhook_secret
    assert api.token not in front.webhook_secret
    assert not api.calls_to("getUpdates")

    message = await api.send_text(ALICE, None, "/start")  # Telegram would POST it to us
    update = {"update_id": 777, "message": message}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=update) as response:
            assert response.status == 403  # no secret: refused
        async with session.post(url, json=update, headers={SECRET_HEADER: "wrong"}) as response:
            assert response.status == 403
        headers = {SECRET_HEADER: front.webhook_secret}
        async with session.post(url, data=b"not json", headers=headers) as response:
            assert response.status == 400
        async with session.post(url, json=update, headers=headers) as response:
            assert response.status == 200
    (answer,) = await api.wait_for("sendMessage")
    assert answer.params["text"] == t("tg.start", "en", name="Alice", style=t("style.hayao", "en"))
    await front.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.post(url, json=update):
            pass


async def test_a_rejected_token_is_not_repeated_in_the_error(start_bot: StartBot) -> None:
    wrong = "123456:WRONG-SECRET-TOKEN"
    with pytest.raises(InvalidToken) as caught:
        await start_bot(telegram_token=wrong)
    assert "WRONG-SECRET-TOKEN" not in str(caught.value)
    assert "TELEGRAM_TOKEN" in str(caught.value)
    assert caught.value.__suppress_context__  # the chained PTB error is not printed either


async def test_every_photo_is_one_usage_row_whatever_its_outcome(bot: Harness) -> None:
    """Success, a refusal before downloading, a failed conversion and a failed delivery: one
    row each, keyed by the job's request id (the job runner writes or updates it)."""
    api = bot.api
    dave, eve = make_user(1101, language_code="en"), make_user(1102, language_code="en")
    ok = await api.send_photo(ALICE, None, synthetic_jpeg(seed=41))
    await api.wait_for("sendPhoto", replies_to(ok))
    huge = await api.send_document(BORIS, None, bytes(20 * 1024 * 1024 + 1), "x.png", "image/png")
    await api.wait_for("sendMessage", replies_to(huge))
    broken = await api.send_document(dave, None, b"not a picture at all", "x.jpg", "image/jpeg")
    await api.wait_for("sendMessage", replies_to(broken))
    api.fail_next("sendPhoto", 500, count=10)
    undelivered = await api.send_photo(eve, None, synthetic_jpeg(seed=42))
    await api.wait_for("sendMessage", replies_to(undelivered))
    await bot.settled()
    outcomes = {}
    for person in (ALICE, BORIS, dave, eve):
        (row,) = await bot.rows_of(person)  # exactly one each
        outcomes[person["id"]] = (row["status"], row["error_kind"])
        assert row["request_id"]
    assert outcomes == {
        ALICE["id"]: ("ok", None),
        BORIS["id"]: ("error", "too_large"),
        dave["id"]: ("error", "not_image"),
        eve["id"]: ("error", "delivery_failed"),
    }
