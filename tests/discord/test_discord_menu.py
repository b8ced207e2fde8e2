"""The "Anime-fy" message command through the real discord.py and the stand-in."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bot.discord import DiscordFrontEnd
from bot.discord.context_menu import MAX_IMAGES
from i18n import t
from tests.standins.discord_api import DiscordStandIn, Reply


def png(seed: int, side: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (side, side + seed % 7, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


def notes(reply: Reply) -> str:
    fields = reply.embeds[0].get("fields", [])
    return next((f["value"] for f in fields if f["name"] == "Notes"), "")


async def test_menu_converts_the_images_and_skips_the_text_file(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, street: bytes, portrait: bytes
) -> None:
    target = discord_standin.make_message(
        [
            ("street.jpg", street, "image/jpeg"),
            ("me.jpg", portrait, "image/jpeg"),
            ("notes.txt", b"just text", "text/plain"),
        ],
        content="look at these",
    )
    record = await discord_standin.invoke_message_command("Anime-fy", target)
    deferral = await record.wait_response()
    assert deferral.thinking and not deferral.ephemeral
    (reply,) = await record.wait_followups(1, timeout=30)
    assert not reply.ephemeral and reply.message_id == deferral.message_id
    assert list(reply.files) == ["anime-1-street.jpg", "anime-2-me.jpg"]
    assert size_of(reply.files["anime-1-street.jpg"]) == size_of(street)
    assert size_of(reply.files["anime-2-me.jpg"]) == size_of(portrait)
    fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
    assert fields["Images converted"] == "2"
    assert t("dc.menu.skipped_other", "en", skipped=1) in notes(reply)
    summary = await bot.runtime.db.stats.summary(days=1)
    assert (summary.total, summary.ok) == (2, 2)


async def test_menu_converts_at_most_the_limit_and_says_how_many_were_skipped(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn
) -> None:
    images = [(f"p{i}.png", png(i), "image/png") for i in range(MAX_IMAGES + 2)]
    target = discord_standin.make_message(images)
    record = await discord_standin.invoke_message_command("Anime-fy", target, locale="ru")
    (reply,) = await record.wait_followups(1, timeout=30)
    assert len(reply.files) == MAX_IMAGES
    expected = t("dc.menu.skipped_limit", "ru", limit=MAX_IMAGES, skipped=2)
    fields = reply.embeds[0]["fields"]
    assert any(expected in f["value"] for f in fields)
    summary = await bot.runtime.db.stats.summary(days=1)
    assert summary.total == MAX_IMAGES


async def test_menu_splits_results_over_the_upload_limit_into_several_messages(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn
) -> None:
    images = [("a.png", png(11, 128), "image/png"), ("b.png", png(12, 128), "image/png")]
    first = await discord_standin.invoke_message_command(
        "Anime-fy", discord_standin.make_message(images)
    )
    (whole,) = await first.wait_followups(1, timeout=30)
    sizes = [len(d) for d in whole.files.values()]
    # Each result fits alone, both together do not (the same input is a cache hit now).
    limit = sum(sizes) - 1
    again = await discord_standin.invoke_message_command(
        "Anime-fy", discord_standin.make_message(images), attachment_size_limit=limit
    )
    one, two = await again.wait_followups(2, timeout=30)
    assert list(one.files) == ["anime-1-a.jpg"] and list(two.files) == ["anime-2-b.jpg"]
    assert one.embeds and not two.embeds
    assert not one.ephemeral and not two.ephemeral
    assert one.files["anime-1-a.jpg"] == whole.files["anime-1-a.jpg"]
    statuses = [r.status for r in discord_standin.requests_matching(r"^POST /webhooks/")]
    assert statuses == [200, 200, 200]


async def test_menu_reports_images_that_failed_next_to_those_that_worked(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, street: bytes
) -> None:
    target = discord_standin.make_message(
        [("good.jpg", street, "image/jpeg"), ("bad.jpg", street[:200], "image/jpeg")]
    )
    record = await discord_standin.invoke_message_command("Anime-fy", target)
    (reply,) = await record.wait_followups(1, timeout=30)
    assert list(reply.files) == ["anime-1-good.jpg"]
    fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
    assert fields["Not converted"] == t(
        "dc.result.failed_item", "en", filename="bad.jpg", reason=t("error.damaged", "en")
    )


async def test_menu_on_a_message_without_images_answers_privately(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn
) -> None:
    target = discord_standin.make_message([("notes.txt", b"x", "text/plain")], content="hi")
    record = await discord_standin.invoke_message_command("Anime-fy", target, locale="zh-CN")
    reply = await record.wait_response()
    assert reply.type == 4 and reply.ephemeral
    assert reply.content == t("dc.menu.no_images", "zh")
    assert record.followups == []


async def test_menu_where_every_image_fails_answers_privately(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn
) -> None:
    target = discord_standin.make_message([("empty.png", b"", "image/png")])
    record = await discord_standin.invoke_message_command("Anime-fy", target)
    deferral = await record.wait_response()
    (reply,) = await record.wait_followups(1, timeout=30)
    assert reply.ephemeral and reply.content == t("error.empty", "en")
    assert record.deleted_message_ids == [deferral.message_id]
