"""The real discord.py 2.7, end to end against the local Discord stand-in (loopback only)."""

from __future__ import annotations

import asyncio
import gc
import io
import time
import warnings
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from PIL import Image

from tests.standins.discord_api import ADMIN_PERMISSIONS, EPHEMERAL, DiscordStandIn
from tests.standins.discord_fixtures import discord_standin, running_client

__all__ = ["discord_standin"]  # the fixture, re-exported so pytest finds it here

GUILD_ID = 1_100_000_000_000_000_002


def png_bytes(
    width: int = 40, height: int = 30, colour: tuple[int, int, int] = (200, 40, 90)
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


class TinyBot(discord.Client):
    """A minimal photo bot: defers, downloads the attachment, answers with file + embed."""

    def __init__(self, intents: discord.Intents | None = None) -> None:
        super().__init__(intents=intents or discord.Intents.none(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.guild_id = GUILD_ID
        self.synced: dict[str, list[app_commands.AppCommand]] = {}
        self.completed: list[str] = []
        self._completion = asyncio.Condition()
        self.errors: list[BaseException] = []
        self._register()

    def _register(self) -> None:
        tree = self.tree

        @tree.command(name="animate", description="Turn a photo into anime")
        @app_commands.describe(photo="The photo", style="Art style", private="Only you see it")
        @app_commands.choices(
            style=[
                app_commands.Choice(name="Hayao", value="hayao"),
                app_commands.Choice(name="Shinkai", value="shinkai"),
            ]
        )
        async def animate(
            interaction: discord.Interaction,
            photo: discord.Attachment,
            style: app_commands.Choice[str],
            private: bool = False,
        ) -> None:
            if not (photo.content_type or "").startswith("image/"):
                await interaction.response.send_message("That is not an image.", ephemeral=True)
                return
            await interaction.response.defer(thinking=True, ephemeral=private)
            data = await photo.read()
            embed = discord.Embed(
                title=f"Style: {style.name}", description=f"{photo.width}x{photo.height}"
            )
            embed.set_image(url="attachment://anime.png")
            try:
                await interaction.followup.send(
                    embed=embed, file=discord.File(io.BytesIO(data), filename="anime.png")
                )
            except discord.HTTPException as exc:
                if exc.status != 413:
                    raise
                await interaction.followup.send("The result is too large.", ephemeral=True)

        @tree.context_menu(name="Animate images")
        async def animate_message(
            interaction: discord.Interaction, message: discord.Message
        ) -> None:
            images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
            if not images:
                await interaction.response.send_message("No images there.", ephemeral=True)
                return
            await interaction.response.defer(thinking=True)
            files = [discord.File(io.BytesIO(await a.read()), filename=a.filename) for a in images]
            await interaction.followup.send(f"{len(files)} image(s)", files=files)

        @tree.command(name="ping", description="Health check", guild=discord.Object(self.guild_id))
        async def ping(interaction: discord.Interaction) -> None:
            admin = interaction.permissions.administrator
            await interaction.response.send_message(
                f"pong admin={admin} locale={interaction.locale}"
            )

    async def setup_hook(self) -> None:
        self.synced["global"] = await self.tree.sync()
        self.synced["guild"] = await self.tree.sync(guild=discord.Object(self.guild_id))

    async def on_app_command_completion(
        self,
        interaction: discord.Interaction,
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        async with self._completion:
            self.completed.append(command.name)
            self._completion.notify_all()

    async def wait_completed(self, count: int) -> list[str]:
        """Wait until ``count`` commands have completed (discord.py's completion event)."""
        async with self._completion, asyncio.timeout(5):
            await self._completion.wait_for(lambda: len(self.completed) >= count)
        return self.completed


@pytest.mark.parametrize("guilds_intent", [False, True])
async def test_connect_ready_and_sync(discord_standin: DiscordStandIn, guilds_intent: bool) -> None:
    bot = TinyBot(discord.Intents(guilds=guilds_intent))
    started = time.perf_counter()
    async with running_client(bot, discord_standin):
        connect_s = time.perf_counter() - started
        await discord_standin.wait_ready()
        assert connect_s < 5, connect_s
        assert bot.user is not None and bot.user.id == discord_standin.app_id
        assert bot.application_id == discord_standin.app_id
        guild = bot.get_guild(GUILD_ID)
        if guilds_intent:  # GUILD_CREATE is only sent with the GUILDS intent, as on Discord
            assert guild is not None and guild.name == discord_standin.guild_name
            assert guild.get_channel(discord_standin.channel_id) is not None
        else:  # READY alone lists the guild as unavailable
            assert guild is not None and guild.unavailable and guild.name == ""

        global_sync, guild_sync = await discord_standin.wait_for_sync(count=2)
        assert global_sync.guild_id is None and guild_sync.guild_id == GUILD_ID
        assert sorted(global_sync.names) == ["Animate images", "animate"]
        assert guild_sync.names == ["ping"]
        animate = global_sync.command("animate")
        assert [(o["name"], o["type"], o.get("required", False)) for o in animate["options"]] == [
            ("photo", 11, True),
            ("style", 3, True),
            ("private", 5, False),
        ]
        assert animate["options"][1]["choices"] == [
            {"name": "Hayao", "value": "hayao"},
            {"name": "Shinkai", "value": "shinkai"},
        ]
        assert global_sync.command("Animate images")["type"] == 3
        # discord.py parsed the echoed commands (ids included).
        assert {c.name: c.id for c in bot.synced["global"]} == {
            c["name"]: int(c["id"]) for c in global_sync.commands
        }

        me = discord_standin.requests_matching(r"^GET /users/@me$")[0]
        assert me.authorization == f"Bot {discord_standin.token}"
        identify = next(f for f in discord_standin.gateway_received if f["op"] == 2)
        assert identify["d"]["intents"] == bot.intents.value
        assert discord_standin.heartbeat_count >= 1  # discord.py beats right after HELLO
        assert (
            discord_standin.requests_matching(r"^GET /gateway$")[0].query["compress"]
            == "zlib-stream"
        )


async def test_slash_defer_then_followup_with_identical_file(
    discord_standin: DiscordStandIn,
) -> None:
    photo = png_bytes()
    async with running_client(TinyBot(), discord_standin):
        record = await discord_standin.invoke_slash(
            "animate",
            {"style": "shinkai"},
            attachments={"photo": ("cat.png", photo, "image/png")},
        )
        deferral = await record.wait_response()
        assert deferral.type == 5 and deferral.thinking and not deferral.ephemeral
        (followup,) = await record.wait_followups(1)
        assert followup.files == {"anime.png": photo}
        assert followup.embeds[0]["title"] == "Style: Shinkai"
        assert followup.embeds[0]["description"] == "40x30"
        assert followup.embeds[0]["image"]["url"] == "attachment://anime.png"
        assert not followup.ephemeral
        # The first follow-up after a deferral replaces the "thinking" message.
        assert followup.message_id == deferral.message_id == record.original_message_id

    callback = discord_standin.requests_matching(r"^POST /interactions/")[0]
    assert callback.query == {"with_response": "1"} and callback.json == {"type": 5}
    webhook = discord_standin.requests_matching(r"^POST /webhooks/")[0]
    assert webhook.query["wait"] == "1"
    assert webhook.files == [("anime.png", photo)]
    # Interaction callbacks and follow-ups are authorised by the token in the URL only.
    assert callback.authorization is None and webhook.authorization is None
    downloads = discord_standin.requests_matching(r"^GET /attachments/")
    assert len(downloads) == 1 and downloads[0].status == 200


async def test_private_defer_is_ephemeral_and_errors_reply_ephemerally(
    discord_standin: DiscordStandIn,
) -> None:
    async with running_client(TinyBot(), discord_standin):
        private = await discord_standin.invoke_slash(
            "animate",
            {"style": "hayao", "private": True},
            attachments={"photo": ("me.png", png_bytes(), "image/png")},
        )
        deferral = await private.wait_response()
        assert deferral.type == 5 and deferral.flags == EPHEMERAL and deferral.ephemeral
        (followup,) = await private.wait_followups(1)
        assert followup.ephemeral  # inherited from the deferral

        wrong = await discord_standin.invoke_slash(
            "animate",
            {"style": "hayao"},
            attachments={"photo": ("notes.txt", b"hello", "text/plain")},
        )
        reply = await wrong.wait_response()
        assert reply.type == 4 and reply.ephemeral and reply.flags == EPHEMERAL
        assert reply.content == "That is not an image."
        assert wrong.followups == []


async def test_message_context_menu_reads_target_attachments(
    discord_standin: DiscordStandIn,
) -> None:
    first, second = png_bytes(colour=(1, 2, 3)), png_bytes(64, 48, (9, 9, 9))
    target = discord_standin.make_message(
        [
            ("a.png", first, "image/png"),
            ("b.png", second, "image/png"),
            ("c.txt", b"x", "text/plain"),
        ],
        content="look",
    )
    assert [a.get("width") for a in target["attachments"]] == [40, 64, None]
    async with running_client(TinyBot(), discord_standin):
        record = await discord_standin.invoke_message_command("Animate images", target)
        assert record.data["target_id"] == target["id"]
        assert (await record.wait_response()).thinking
        (followup,) = await record.wait_followups(1)
        assert followup.content == "2 image(s)"
        assert followup.files == {"a.png": first, "b.png": second}

        empty = discord_standin.make_message([("c.txt", b"x", "text/plain")])
        reply = await (
            await discord_standin.invoke_message_command("Animate images", empty)
        ).wait_response()
        assert reply.ephemeral and reply.content == "No images there."


async def test_guild_command_locale_and_permissions(discord_standin: DiscordStandIn) -> None:
    bot = TinyBot()
    async with running_client(bot, discord_standin):
        record = await discord_standin.invoke_slash(
            "ping", locale="ja", permissions=ADMIN_PERMISSIONS
        )
        assert record.data["guild_id"] == str(GUILD_ID)  # a guild-scoped command
        reply = await record.wait_response()
        assert reply.type == 4 and not reply.ephemeral
        assert reply.content == "pong admin=True locale=ja"

        plain = await discord_standin.invoke_slash("ping", permissions="0")
        assert (await plain.wait_response()).content == "pong admin=False locale=en-US"
        assert await bot.wait_completed(2) == ["ping", "ping"]


@pytest.mark.parametrize("global_", [False, True])
async def test_followup_429_is_retried(discord_standin: DiscordStandIn, global_: bool) -> None:
    photo = png_bytes()
    async with running_client(TinyBot(), discord_standin):
        rule = discord_standin.fail_next(
            r"^POST /webhooks/", status=429, retry_after=0.05, global_=global_
        )
        record = await discord_standin.invoke_slash(
            "animate", {"style": "hayao"}, attachments={"photo": ("p.png", photo, "image/png")}
        )
        (followup,) = await record.wait_followups(1)
        assert followup.files == {"anime.png": photo}
    assert rule.hits == 1
    attempts = discord_standin.requests_matching(r"^POST /webhooks/")
    assert [r.status for r in attempts] == [429, 200]
    assert attempts[0].files == attempts[1].files == [("anime.png", photo)]  # file re-sent whole


async def test_rest_429_and_500_are_retried_and_404_raises(discord_standin: DiscordStandIn) -> None:
    bot = TinyBot()
    async with running_client(bot, discord_standin):
        discord_standin.fail_next(r"^GET /channels/", status=429, retry_after=0.05, global_=True)
        channel = await bot.fetch_channel(discord_standin.channel_id)
        assert channel.id == discord_standin.channel_id
        assert [r.status for r in discord_standin.requests_matching(r"^GET /channels/")] == [
            429,
            200,
        ]

        # A 500 is retried too, after discord.py's fixed 1 s back-off.
        discord_standin.fail_next(r"^POST /interactions/", status=500)
        record = await discord_standin.invoke_slash("ping")
        assert str((await record.wait_response(timeout=10)).content).startswith("pong")
        assert [r.status for r in discord_standin.requests_matching(r"^POST /interactions/")] == [
            500,
            200,
        ]

        with pytest.raises(discord.NotFound):
            await bot.fetch_channel(42)
        with pytest.raises(discord.NotFound):
            await bot.http.request(discord.http.Route("GET", "/no/such/route"))


async def test_oversized_followup_is_refused_with_413(discord_standin: DiscordStandIn) -> None:
    photo = png_bytes(300, 300)
    async with running_client(TinyBot(), discord_standin):
        record = await discord_standin.invoke_slash(
            "animate",
            {"style": "hayao"},
            attachments={"photo": ("big.png", photo, "image/png")},
            attachment_size_limit=len(photo) - 1,
        )
        assert record.payload["attachment_size_limit"] == len(photo) - 1
        (followup,) = await record.wait_followups(1)
        assert followup.content == "The result is too large." and followup.files == {}
    statuses = [r.status for r in discord_standin.requests_matching(r"^POST /webhooks/")]
    assert statuses == [413, 200]


async def test_reconnect_resumes_session(discord_standin: DiscordStandIn) -> None:
    async with running_client(TinyBot(), discord_standin):
        await discord_standin.request_reconnect()
        await discord_standin.wait_resumed()
        assert discord_standin.identify_count == 1
        resume = next(f for f in discord_standin.gateway_received if f["op"] == 6)
        assert resume["d"]["seq"] >= 1 and resume["d"]["token"] == discord_standin.token
        record = await discord_standin.invoke_slash("ping")
        assert str((await record.wait_response()).content).startswith("pong")


async def test_json_responses_have_exact_content_type(discord_standin: DiscordStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(discord_standin.api_base + "/nope") as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["message"].startswith("404")
        async with session.get(discord_standin.api_base + "/users/@me") as resp:
            assert resp.status == 401  # no bot token


async def test_clean_shutdown_leaves_no_tasks_or_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with DiscordStandIn() as standin:
            from tests.standins.discord_api import patch_discord

            patch_discord(monkeypatch, standin)
            bot = TinyBot()
            async with running_client(bot, standin):
                record = await standin.invoke_slash(
                    "animate",
                    {"style": "hayao"},
                    attachments={"photo": ("p.png", png_bytes(), "image/png")},
                )
                await record.wait_followups(1)
                assert await bot.wait_completed(1) == ["animate"]
            assert bot.is_closed()
            assert bot.ws is not None and not bot.ws.open
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == []
        gc.collect()
    assert [str(w.message) for w in caught] == []


class ExtrasBot(TinyBot):
    """Sub-commands, a user command, a button (update callback) and an edited deferral."""

    def _register(self) -> None:
        super()._register()
        group = app_commands.Group(name="styles", description="Styles")

        class Picker(discord.ui.View):
            @discord.ui.button(label="Hayao", custom_id="pick:hayao")
            async def pick(
                self, interaction: discord.Interaction, button: discord.ui.Button[Picker]
            ) -> None:
                await interaction.response.edit_message(content="picked hayao", view=None)

        @group.command(name="pick", description="Pick a style")
        async def pick(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("choose", view=Picker(timeout=None))

        @group.command(name="count", description="Count styles")
        async def count(
            interaction: discord.Interaction, limit: int, who: discord.User | None = None
        ) -> None:
            await interaction.response.defer()
            suffix = f" for {who.id}" if who else ""
            await interaction.edit_original_response(content=f"{min(limit, 2)} styles{suffix}")

        self.tree.add_command(group)

        @self.tree.context_menu(name="Profile")
        async def profile(interaction: discord.Interaction, member: discord.Member) -> None:
            await interaction.response.send_message(f"{member.display_name} {member.id}")


async def test_subcommands_user_command_buttons_and_edits(discord_standin: DiscordStandIn) -> None:
    bot = ExtrasBot()
    async with running_client(bot, discord_standin):
        picker = await discord_standin.invoke_slash("styles pick")
        choose = await picker.wait_response()
        assert choose.content == "choose"
        assert choose.components[0]["components"][0]["custom_id"] == "pick:hayao"
        message = picker.original_message
        assert message is not None
        click = await discord_standin.invoke_component("pick:hayao", message)
        update = await click.wait_response()
        assert update.type == 7 and update.content == "picked hayao"
        assert update.message_id == picker.original_message_id
        assert message["content"] == "picked hayao" and message["components"] == []

        counted = await discord_standin.invoke_slash("styles count", {"limit": 7})
        assert counted.data["options"] == [
            {"name": "count", "type": 1, "options": [{"name": "limit", "type": 4, "value": 7}]}
        ]
        assert (await counted.wait_response()).type == 5
        (edit,) = await counted.wait_edits(1)
        assert edit.content == "2 styles"
        assert (counted.original_message or {}).get("content") == "2 styles"

        for_user = await discord_standin.invoke_slash("styles count", {"limit": 1, "who": 77})
        assert (await for_user.wait_edits(1))[0].content == "1 styles for 77"

        in_dm = await discord_standin.invoke_slash(
            "animate",
            {"style": "hayao"},
            attachments={"photo": ("d.png", png_bytes(), "image/png")},
            dm=True,
        )
        assert "guild_id" not in in_dm.payload and in_dm.payload["context"] == 1
        (dm_reply,) = await in_dm.wait_followups(1)
        assert dm_reply.files == {"anime.png": png_bytes()}

        profile = await discord_standin.invoke_user_command("Profile", 4242)
        assert (await profile.wait_response()).content == "User4242 4242"

        with pytest.raises(ValueError, match="not a choice"):
            await discord_standin.invoke_slash(
                "animate", {"style": "cubism"}, attachments={"photo": ("p.png", b"", "image/png")}
            )
        with pytest.raises(LookupError, match="not registered"):
            await discord_standin.invoke_slash("nope")
        assert await bot.wait_completed(5) == ["pick", "count", "count", "animate", "Profile"]


async def test_many_interactions_in_a_row(discord_standin: DiscordStandIn) -> None:
    photo = png_bytes()
    async with running_client(TinyBot(), discord_standin):
        started = time.perf_counter()
        for _ in range(20):
            record = await discord_standin.invoke_slash("ping")
            assert (await record.wait_response()).content == "pong admin=False locale=en-US"
        records = await asyncio.gather(
            *(
                discord_standin.invoke_slash(
                    "animate",
                    {"style": "hayao"},
                    attachments={"photo": ("p.png", photo, "image/png")},
                )
                for _ in range(30)
            )
        )
        for record in records:
            (followup,) = await record.wait_followups(1)
            assert followup.files == {"anime.png": photo}
        elapsed = time.perf_counter() - started
    assert len({r.id for r in records}) == 30
    assert elapsed < 20, elapsed
