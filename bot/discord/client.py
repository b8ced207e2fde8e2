"""The Discord client (commands synced once at start) and its front end for `animebot serve`.

`DiscordFrontEnd(runtime)` is what a process runs: `await start()` logs in, registers the
commands and connects in a background task, returning once Discord reports ready (or raising
`DiscordStartError` with one clear line), and resumes the jobs the last run left
(through the job runner); `await stop()` stops taking interactions, lets the ones in flight
finish within the process's one grace period (ANIMEBOT_SHUTDOWN_GRACE_S), puts off the rest
(their jobs stay stored, their people are told) and closes the connection. Reconnects,
session resumes and rate limits are discord.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
import discord
from discord import app_commands

from bot.discord.commands import add_commands, style_titles
from bot.discord.context_menu import add_context_menu
from bot.discord.conversion import PLATFORM, Converter, Origin, chat_id, request_job
from bot.discord.jobs import ANSWERED, NOTICE_S, RESUME_WITHIN_S
from bot.discord.outlet import register as register_outlet
from bot.discord.respond import send_error
from bot.discord.translator import CatalogueTranslator, language
from i18n import error_message, t
from service.convert import new_request_id
from service.errors import InternalError, ShuttingDown
from service.reachability import unreachable_reason
from service.runtime import Runtime

log = logging.getLogger("animebot.discord")


class DiscordStartError(RuntimeError):
    """The bot could not start; the message is one line for the operator (never the token)."""


class AnimeTree(app_commands.CommandTree["AnimeClient"]):
    """Tracks the interactions in flight, refuses new ones while stopping, and answers any
    unexpected failure with a translated message and a reference the log also carries."""

    def __init__(self, client: AnimeClient) -> None:
        super().__init__(client)
        self.inflight: dict[asyncio.Task[Any], discord.Interaction[AnimeClient]] = {}
        self.closing = False

    async def interaction_check(self, interaction: discord.Interaction[AnimeClient], /) -> bool:
        if self.closing:
            data: dict[str, Any] = dict(interaction.data or {})
            if data.get("name") != "stats":  # a conversion: one usage row
                origin = Origin(interaction.user.id, chat_id(interaction), 0)
                job = request_job(origin, language(interaction))
                await self.client.runtime.runner.refuse(job, ShuttingDown("shutting down"))
            with contextlib.suppress(discord.HTTPException):
                await send_error(interaction, t("dc.shutting_down", language(interaction)))
            return False
        task = asyncio.current_task()  # discord.py runs each interaction in its own task
        if task is not None:
            self.inflight[task] = interaction
            task.add_done_callback(lambda done: self.inflight.pop(done, None))
        return True

    async def on_error(
        self, interaction: discord.Interaction[AnimeClient], error: app_commands.AppCommandError, /
    ) -> None:
        original = getattr(error, "original", error)
        ref = new_request_id()
        name = interaction.command.name if interaction.command else "?"
        log.error("discord command %s failed, reference %s", name, ref, exc_info=original)
        try:
            await send_error(interaction, error_message(InternalError(ref), language(interaction)))
        except discord.HTTPException as exc:
            log.warning("could not report reference %s to the user (HTTP %s)", ref, exc.status)


class AnimeClient(discord.Client):
    """A Cog-free `discord.Client` with one `CommandTree`: /anime, /stats and "Anime-fy"."""

    def __init__(self, runtime: Runtime, *, guild_ready_timeout: float = 2.0) -> None:
        super().__init__(
            intents=discord.Intents(guilds=True),
            guild_ready_timeout=guild_ready_timeout,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
        )
        self.runtime = runtime
        self.tree = AnimeTree(self)
        self.synced: list[app_commands.AppCommand] = []
        self.converter = converter = Converter(runtime)
        converter.register(self.http)  # the runner fetches attachments with this client
        self.titles = titles = style_titles(runtime)
        # The runner answers /anime jobs through this client (bot/discord/outlet.py).
        converter.live = register_outlet(runtime.runner, self, titles)
        add_commands(self.tree, runtime, converter)
        add_context_menu(self.tree, converter)

    @property
    def sync_guild(self) -> discord.Object | None:
        raw = self.runtime.settings.discord_guild_id.strip()
        return discord.Object(int(raw)) if raw else None

    async def setup_hook(self) -> None:
        """Runs once after login: localize, then sync the commands (global, or to the test
        guild named by DISCORD_GUILD_ID, where changes show at once)."""
        await self.tree.set_translator(CatalogueTranslator())
        guild = self.sync_guild
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        self.synced = await self.tree.sync(guild=guild)
        where = "globally" if guild is None else f"to guild {guild.id}"
        log.info("synced %d commands %s", len(self.synced), where)

    async def on_ready(self) -> None:
        log.info("Discord ready as %s in %d guild(s)", self.user, len(self.guilds))


class ShardedAnimeClient(AnimeClient, discord.AutoShardedClient):
    """The same bot on an `AutoShardedClient` (DISCORD_SHARDED=true): Discord requires shards
    from 2,500 servers on, and each shard is one gateway connection of its own. The shard
    count is the one Discord recommends (GET /gateway/bot); interactions are answered the same
    way whatever shard brought them."""

    async def on_ready(self) -> None:
        log.info(
            "Discord ready as %s in %d guild(s) on %s shard(s)",
            self.user,
            len(self.guilds),
            self.shard_count,
        )


def client_class(sharded: bool) -> type[AnimeClient]:
    return ShardedAnimeClient if sharded else AnimeClient


def _start_error(exc: BaseException) -> DiscordStartError:
    """One line that says what to fix."""
    if isinstance(exc, discord.LoginFailure):
        return DiscordStartError(
            "Discord rejected DISCORD_TOKEN: copy the bot token again from the Developer Portal "
            "(Bot > Reset Token)"
        )
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return DiscordStartError("Discord refused the gateway intents the bot asked for")
    if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
        return DiscordStartError("Discord rejected DISCORD_TOKEN on the gateway (close code 4004)")
    if isinstance(exc, discord.Forbidden):
        return DiscordStartError(
            "Discord refused to register the commands (403): invite the bot with the "
            "applications.commands scope, and check DISCORD_GUILD_ID"
        )
    if isinstance(exc, discord.HTTPException):
        return DiscordStartError(f"Discord answered HTTP {exc.status} while starting the bot")
    if isinstance(exc, aiohttp.ClientError | OSError):
        why = unreachable_reason(exc) or "the connection failed"
        return DiscordStartError(f"cannot reach Discord ({why}): check the network connection")
    if isinstance(exc, discord.DiscordException):
        return DiscordStartError(f"the Discord connection failed ({type(exc).__name__})")
    return DiscordStartError(f"the Discord bot failed to start ({type(exc).__name__})")


class DiscordFrontEnd:
    """The Discord bot of a process, sharing the process's Runtime (engine, database, service)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float = 60.0,
    ) -> None:
        self.runtime = runtime
        self.guild_ready_timeout = guild_ready_timeout
        self.ready_timeout = ready_timeout
        self.client: AnimeClient | None = None
        self._task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Log in, sync the commands, connect in the background; return once ready."""
        token = self.runtime.settings.discord_token.strip()
        if not token:
            raise DiscordStartError("DISCORD_TOKEN is not set")
        if self.client is not None:
            raise RuntimeError("DiscordFrontEnd.start() called twice")
        self.stopping.clear()
        cls = client_class(self.runtime.settings.discord_sharded)
        client = cls(self.runtime, guild_ready_timeout=self.guild_ready_timeout)
        self.client = client
        try:
            await client.login(token)  # also runs setup_hook: the one command sync
            # Read before any new interaction can add a job of its own.
            left = await self.runtime.runner.left_over(PLATFORM)
            self._task = asyncio.create_task(client.connect(reconnect=True), name="discord-bot")
            await self._wait_ready(client, self._task)
            await self.runtime.runner.resume(left, answerable_s=RESUME_WITHIN_S)
        except DiscordStartError:
            await self._abort()
            raise
        except Exception as exc:
            await self._abort()
            log.debug("Discord start failed", exc_info=exc)
            raise _start_error(exc) from None
        except BaseException:
            await self._abort()
            raise

    async def _wait_ready(self, client: AnimeClient, connection: asyncio.Task[None]) -> None:
        ready = asyncio.create_task(client.wait_until_ready(), name="discord-ready")
        try:
            await asyncio.wait(
                {connection, ready}, timeout=self.ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
        if client.is_ready():
            return
        if connection.done():
            connection.result()  # raises why the connection ended
            raise DiscordStartError("the Discord connection closed before it was ready")
        raise DiscordStartError(f"Discord did not report ready within {self.ready_timeout:.0f} s")

    async def _abort(self) -> None:
        client, task = self.client, self._task
        self.client = self._task = None
        if client is not None:
            await client.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def stop(self) -> None:
        """Stop taking interactions, let those in flight get their answer within the grace
        period the whole process shares, turn away what still waits (those jobs stay stored;
        the person is told, privately, the picture comes after the restart), then close the
        connection."""
        client = self.client
        if client is None:
            return
        tree = client.tree
        tree.closing = True
        self.stopping.set()
        service, runner = self.runtime.service, self.runtime.runner
        service.start_grace()  # the one grace period of the process starts (if not yet)

        def running() -> set[asyncio.Task[Any]]:
            tasks = {task for task in tree.inflight if not task.done()}
            return tasks | runner.pending_tasks(PLATFORM)  # /anime jobs run in the runner

        pending = running()
        if pending:
            log.info(
                "stopping: waiting up to %.0f s for %d interaction(s)",
                service.grace_left(),
                len(pending),
            )
            _, pending = await asyncio.wait(pending, timeout=service.grace_left())
        while not pending and (more := running()):  # accepted while the handlers ended
            _, pending = await asyncio.wait(more, timeout=service.grace_left())
        if pending:
            service.end_grace()  # what still waits in the queue is put off
            still = running()
            pending = set()
            if still:
                _, pending = await asyncio.wait(still, timeout=service.final_left())
        if pending:
            log.warning("stopping: %d interaction(s) cut short", len(pending))
            await asyncio.gather(*(self._cut_short(tree, task) for task in pending))
        await client.close()
        connection, self._task, self.client = self._task, None, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                pass
            except Exception:
                log.exception("the Discord connection ended with an error")
        log.info("Discord bot stopped")

    @staticmethod
    async def _cut_short(tree: AnimeTree, task: asyncio.Task[Any]) -> None:
        """Cancel an interaction that outlived the grace period; a conversion keeps its job
        and tells its person itself, anything else is told here why it stopped."""
        interaction = tree.inflight.get(task)
        task.cancel()
        await asyncio.wait([task], timeout=NOTICE_S + 1)
        if interaction is not None and not interaction.extras.get(ANSWERED):
            with contextlib.suppress(discord.HTTPException):
                await send_error(interaction, t("dc.shutting_down", language(interaction)))

    async def wait_closed(self) -> None:
        """Return when the connection ends (after stop(), or if it fails for good)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(task)
