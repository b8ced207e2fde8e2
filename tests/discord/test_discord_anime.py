"""/anime through the real discord.py and the local Discord stand-in, on a real Runtime."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from PIL import Image

from bot.discord import DiscordFrontEnd
from bot.discord.commands import style_titles
from bot.discord.render import style_label
from core.errors import ImageTooLarge
from i18n import error_message, t
from tests.standins.discord_api import DiscordStandIn, InteractionRecord, Reply

StartBot = Callable[..., Awaitable[DiscordFrontEnd]]


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


def field(reply: Reply, name: str) -> str | None:
    embed = reply.embeds[0]
    return next((f["value"] for f in embed.get("fields", []) if f["name"] == name), None)


async def anime(
    standin: DiscordStandIn,
    data: bytes,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
    options: dict[str, object] | None = None,
    **kwargs: Any,
) -> InteractionRecord:
    attachments = {"image": (filename, data, content_type)}
    return await standin.invoke_slash("anime", options or {}, attachments=attachments, **kwargs)


WAIT_S = 30.0  # generous: CI has 2 shared cores


async def result(record: InteractionRecord) -> tuple[Reply, str, bytes]:
    """The single public follow-up, with its one file."""
    (reply,) = await record.wait_followups(1, timeout=WAIT_S)
    assert not reply.ephemeral
    ((name, data),) = reply.files.items()
    return reply, name, data


async def ephemeral_error(record: InteractionRecord) -> str:
    """The private error that follows a public "thinking…", which is deleted first."""
    deferral = await record.wait_response()
    assert deferral.thinking and not deferral.ephemeral
    (reply,) = await record.wait_followups(1, timeout=WAIT_S)
    assert reply.ephemeral and reply.files == {} and reply.embeds == []
    assert record.deleted_message_ids == [deferral.message_id]  # no public trace left
    assert reply.message_id != deferral.message_id
    return str(reply.content)


async def test_connect_syncs_commands_once_with_styles_and_translations(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn
) -> None:
    (sync,) = await discord_standin.wait_for_sync()
    assert sync.guild_id is None  # global: no DISCORD_GUILD_ID
    assert sorted(sync.names) == ["Anime-fy", "anime", "stats", "styles"]
    command = sync.command("anime")
    assert command["type"] == 1
    options = command["options"]
    assert [(o["name"], o["type"], o.get("required", False)) for o in options] == [
        ("image", 11, True),
        ("style", 3, False),
        ("faces", 5, False),
        ("side_by_side", 5, False),
    ]
    styles = bot.runtime.service.styles()
    assert styles and [c["value"] for c in options[1]["choices"]] == styles
    assert sync.command("stats")["options"] == []
    assert sync.command("styles")["options"] == []
    assert sync.command("Anime-fy")["type"] == 3  # a message command

    # Descriptions, choice names and the menu's name are localized from the catalogue.
    for locale, lang in (("zh-CN", "zh"), ("ru", "ru")):
        assert command["description_localizations"][locale] == t("dc.cmd.anime.description", lang)
        assert options[0]["description_localizations"][locale] == t("dc.cmd.anime.image", lang)
        assert sync.command("Anime-fy")["name_localizations"][locale] == t("dc.cmd.menu", lang)
        for choice in options[1]["choices"]:
            key = f"style.{choice['value']}"
            if key in {"style.hayao", "style.shinkai"}:
                assert choice["name_localizations"][locale] == t(key, lang)
    assert "en-US" not in command["description_localizations"]
    assert command["description"] == t("dc.cmd.anime.description", "en")

    assert discord_standin.identify_count == 1
    assert bot.client is not None and bot.client.synced
    assert {c.name for c in bot.client.synced} == set(sync.names)


async def test_reconnect_resumes_without_syncing_again(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, street: bytes
) -> None:
    await discord_standin.wait_for_sync()
    await discord_standin.request_reconnect()
    await discord_standin.wait_resumed()
    record = await anime(discord_standin, street)
    await result(record)
    assert len(discord_standin.syncs) == 1 and discord_standin.identify_count == 1


async def test_anime_defers_then_answers_with_image_and_embed(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, portrait: bytes
) -> None:
    record = await anime(discord_standin, portrait)
    deferral = await record.wait_response()
    assert deferral.type == 5 and deferral.thinking and not deferral.ephemeral
    reply, name, data = await result(record)
    # The result replaces the "thinking…" message, in the channel for everyone.
    assert reply.message_id == deferral.message_id == record.original_message_id
    default = bot.runtime.engine.registry.default_style()
    assert name == f"anime-{default}.jpg"
    assert data[:3] == b"\xff\xd8\xff"
    assert image_size(data) == image_size(portrait)
    embed = reply.embeds[0]
    label = style_label(default, "en", style_titles(bot.runtime))
    assert embed["title"] == t("dc.result.title", "en", style=label)
    assert embed["image"]["url"] == f"attachment://{name}"
    assert re.fullmatch(r"\d+\.\d s", field(reply, "Time") or "")
    assert (field(reply, "Faces found") or "").isdigit()
    assert "@" not in str(reply.payload.get("allowed_mentions"))  # mentions are never pinged

    downloads = discord_standin.requests_matching(r"^GET /attachments/")
    assert len(downloads) == 1
    summary = await bot.runtime.db.stats.summary(days=1)
    assert (summary.total, summary.ok, summary.per_platform) == (1, 1, {"discord": 1})


async def test_anime_with_each_installed_style(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, street: bytes
) -> None:
    titles = style_titles(bot.runtime)
    for style in bot.runtime.service.styles():
        record = await anime(discord_standin, street, options={"style": style})
        reply, name, data = await result(record)
        assert name == f"anime-{style}.jpg"
        assert image_size(data) == image_size(street)
        label = style_label(style, "en", titles)
        assert reply.embeds[0]["title"] == t("dc.result.title", "en", style=label)
    summary = await bot.runtime.db.stats.summary(days=1)
    assert summary.per_style == {s: 1 for s in bot.runtime.service.styles()}


async def test_faces_and_side_by_side_options(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, portrait: bytes
) -> None:
    width, height = image_size(portrait)

    both = await anime(discord_standin, portrait, options={"side_by_side": True})
    reply, _, data = await result(both)
    assert image_size(data) == (2 * width, height)  # original and result side by side

    no_faces = await anime(discord_standin, portrait, options={"faces": False})
    reply, _, data = await result(no_faces)
    assert field(reply, "Faces found") == t("faces.off", "en")
    assert image_size(data) == (width, height)

    faces = await anime(discord_standin, portrait, options={"faces": True, "style": "shinkai"})
    reply, _, _ = await result(faces)
    assert (field(reply, "Faces found") or "").isdigit()


async def test_non_image_attachment_is_tried_and_refused_privately(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn
) -> None:
    record = await anime(discord_standin, b"hello, not a picture", "notes.txt", "text/plain")
    assert await ephemeral_error(record) == t("error.not_image", "en")
    # The decoder decided: the file was downloaded and the service saw it.
    assert len(discord_standin.requests_matching(r"^GET /attachments/")) == 1
    summary = await bot.runtime.db.stats.summary(days=1)
    assert (summary.total, summary.error, summary.error_kinds) == (1, 1, {"not_image": 1})


@pytest.mark.parametrize(
    ("locale", "lang"), [("zh-CN", "zh"), ("ru", "ru"), ("en-GB", "en"), ("de", "en")]
)
async def test_errors_are_translated_by_the_users_locale(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, locale: str, lang: str
) -> None:
    # A GIF header and nothing else: the decoder calls it damaged.
    record = await anime(discord_standin, b"GIF89a", "x.gif", "image/gif", locale=locale)
    text = await ephemeral_error(record)
    assert text == t("error.damaged", lang)
    assert (text != t("error.damaged", "en")) == (lang != "en")


async def test_too_large_attachment_is_refused_without_downloading(
    start_bot: StartBot, discord_standin: DiscordStandIn, portrait: bytes
) -> None:
    bot = await start_bot(max_upload_mb=0.01)
    limit = bot.runtime.settings.max_upload_bytes
    assert len(portrait) > limit
    record = await anime(discord_standin, portrait, locale="ru")
    reply = await record.wait_response()
    assert reply.type == 4 and reply.ephemeral
    assert reply.content == error_message(ImageTooLarge("x", limit=limit), "ru")
    assert discord_standin.requests_matching(r"^GET /attachments/") == []
    assert record.followups == []
    summary = await bot.runtime.db.stats.summary(days=1)
    assert (summary.total, summary.error_kinds) == (1, {"too_large": 1})


async def test_oversized_result_is_recompressed_to_the_upload_limit(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, portrait: bytes
) -> None:
    limit = 9_000
    record = await anime(discord_standin, portrait, attachment_size_limit=limit)
    reply, name, data = await result(record)
    assert len(data) <= limit and name.endswith(".jpg")
    assert data[:3] == b"\xff\xd8\xff"
    width, height = image_size(data)
    assert width <= image_size(portrait)[0] and height > 0
    assert t("dc.note.recompressed", "en") in (field(reply, "Notes") or "")
    statuses = [r.status for r in discord_standin.requests_matching(r"^POST /webhooks/")]
    assert statuses == [200]  # fitted before sending: no 413 from Discord


async def test_result_that_cannot_fit_is_a_private_error(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, street: bytes
) -> None:
    record = await anime(discord_standin, street, attachment_size_limit=200)
    assert await ephemeral_error(record) == t("dc.error.result_too_large", "en")
    summary = await bot.runtime.db.stats.summary(days=1)
    # One row per request: the conversion's own row says the result could not be sent.
    assert (summary.ok, summary.error_kinds) == (0, {"result_too_large": 1})


async def test_rate_limited_followup_is_retried(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, street: bytes
) -> None:
    rule = discord_standin.fail_next(r"^POST /webhooks/", status=429, retry_after=0.05)
    record = await anime(discord_standin, street)
    _, name, data = await result(record)
    assert rule.hits == 1
    attempts = discord_standin.requests_matching(r"^POST /webhooks/")
    assert [r.status for r in attempts] == [429, 200]
    assert attempts[0].files == attempts[1].files == [(name, data)]


async def test_internal_error_shows_a_reference_the_log_also_has(
    bot: DiscordFrontEnd,
    discord_standin: DiscordStandIn,
    street: bytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret boom in /etc/animebot")

    monkeypatch.setattr(bot.runtime.engine, "convert", broken)
    record = await anime(discord_standin, street)
    text = await ephemeral_error(record)
    match = re.search(r"Reference: (\w+)$", text)
    assert match and text == t("error.internal", "en", ref=match.group(1))
    assert "secret" not in text
    logged = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    summary = await bot.runtime.db.stats.summary(days=1)
    assert summary.error_kinds == {"internal": 1}


async def test_a_bug_in_the_bot_answers_privately_with_a_reference(
    bot: DiscordFrontEnd,
    discord_standin: DiscordStandIn,
    street: bytes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import bot.discord.outlet as outlet  # what renders an /anime result for the job runner

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("secret detail")

    monkeypatch.setattr(outlet, "result_embed", broken)
    with caplog.at_level(logging.ERROR, logger="animebot.lifecycle"):
        record = await anime(discord_standin, street, locale="zh-CN")
        text = await ephemeral_error(record)
    ref = text.rsplit("：", 1)[-1]
    assert text == t("error.internal", "zh", ref=ref) and "secret" not in text
    (logged,) = [r for r in caplog.records if r.name == "animebot.lifecycle" and ref in r.message]
    assert logged.exc_info is not None and logged.exc_info[0] is KeyError


async def test_attachment_without_content_type_is_still_converted(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, street: bytes
) -> None:
    attachment = discord_standin.host_attachment("camera-upload", street)
    attachment.pop("content_type")
    record = await discord_standin.invoke_slash("anime", attachments={"image": attachment})
    _, _, data = await result(record)
    assert image_size(data) == image_size(street)


async def test_every_conversion_is_one_usage_row_whatever_its_outcome(
    start_bot: StartBot, discord_standin: DiscordStandIn, street: bytes, portrait: bytes
) -> None:
    """Success, a refusal before downloading, a failed conversion and a refused upload: one
    row each, keyed by the photo's request id (the job runner writes or updates it)."""
    bot = await start_bot(max_upload_mb=0.05)
    too_big = bytes(bot.runtime.settings.max_upload_bytes + 1)
    assert len(street) < len(too_big)
    await result(await anime(discord_standin, street, user_id=501))
    refused = await anime(discord_standin, too_big, "big.png", "image/png", user_id=502)
    assert (await refused.wait_response()).ephemeral
    broken = await anime(discord_standin, b"GIF89a", "x.gif", "image/gif", user_id=503)
    await ephemeral_error(broken)
    discord_standin.fail_next(r"^POST /webhooks/", status=403, code=50013, message="Missing")
    undelivered = await anime(discord_standin, portrait, user_id=504)
    (told,) = await undelivered.wait_followups(1, timeout=WAIT_S)
    assert told.content == t("dc.error.upload", "en")
    db = bot.runtime.db
    outcomes = {}
    for user in (501, 502, 503, 504):
        found = await db._sql.fetchall(
            "SELECT status, error_kind, request_id FROM usage WHERE user_hash = ?",
            (db.hash_id("discord", user),),
        )
        (row,) = found  # exactly one each
        assert row["request_id"]
        outcomes[user] = (row["status"], row["error_kind"])
    assert outcomes == {
        501: ("ok", None),
        502: ("error", "too_large"),
        503: ("error", "damaged"),
        504: ("error", "delivery_failed"),
    }
