"""A local stand-in for Discord's REST API, gateway and attachment CDN, for tests.

One aiohttp server on 127.0.0.1 (random free port) serves the REST API under ``/api/v10``,
the gateway websocket at ``/gateway`` and attachment downloads under ``/attachments``, so the
real discord.py runs end to end over real sockets without reaching Discord.

Usage (``tests/standins/discord_fixtures.py`` has the ``discord_standin`` fixture, which does
the ``patch_discord`` step, and ``running_client``, which starts a client and waits for on_ready)::

    async with DiscordStandIn(app_id=..., guild_id=...) as standin:
        patch_discord(monkeypatch, standin)  # Route.BASE + DEFAULT_GATEWAY, for this test only
        bot = MyBot(intents=discord.Intents.none(), guild_ready_timeout=0.05)
        async with running_client(bot, standin):
            await standin.wait_for_sync()  # setup_hook's tree.sync()
            record = await standin.invoke_slash(
                "animate", {"style": "hayao"}, attachments={"photo": ("a.png", png, "image/png")}
            )
            deferral = await record.wait_response()  # Reply: type 5, .ephemeral
            (result,) = await record.wait_followups(1)  # Reply: .files == {"anime.png": b"..."}

Everything the bot sends is recorded (``standin.requests``) and every wait is event-driven.
Errors can be injected with :meth:`DiscordStandIn.fail_next`. Behaviour of discord.py 2.7 that
this relies on: responses must carry ``Content-Type: application/json`` exactly; a 429 is only
retried when the response has a ``Via`` header and a JSON body with ``retry_after``.
"""

# The ``timeout`` parameters below are the test-facing API (each wait runs under asyncio.timeout).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import io
import itertools
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yarl
from aiohttp import BodyPartReader, WSMsgType, web

if TYPE_CHECKING:
    import pytest

API_PREFIX = "/api/v10"
JSON_CONTENT_TYPE = "application/json"
DISCORD_EPOCH_MS = 1_420_070_400_000

EPHEMERAL = 1 << 6
LOADING = 1 << 7
# View channel, send messages, embed links, attach files, read history, add reactions,
# use application commands.
MEMBER_PERMISSIONS = str(
    (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 31)
)
# The above plus administrator, manage guild and manage messages.
ADMIN_PERMISSIONS = str(int(MEMBER_PERMISSIONS) | (1 << 3) | (1 << 5) | (1 << 13))

# Application command option types.
OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP = 1, 2
OPT_STRING, OPT_INTEGER, OPT_BOOLEAN, OPT_USER = 3, 4, 5, 6
OPT_NUMBER, OPT_ATTACHMENT = 10, 11
# Application command types.
CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3

AttachmentSpec = tuple[str, bytes, str]
"""(filename, data, content_type) of an attachment the stand-in hosts."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response whose Content-Type is exactly ``application/json`` (discord.py needs it)."""
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
    )


def _error(status: int, code: int, message: str) -> web.Response:
    return _json_response({"code": code, "message": message}, status=status)


def _infer_option_type(value: Any) -> int:
    if isinstance(value, bool):
        return OPT_BOOLEAN
    if isinstance(value, int):
        return OPT_INTEGER
    return OPT_NUMBER if isinstance(value, float) else OPT_STRING


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            return int(img.width), int(img.height)
    except Exception:
        return None


@dataclass
class RecordedRequest:
    """One HTTP request the stand-in received (REST, download or gateway upgrade)."""

    method: str
    path: str  # below /api/v10 for REST calls, the raw path otherwise
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None  # JSON body, or the decoded payload_json of a multipart body
    files: list[tuple[str, bytes]] = field(default_factory=list)
    status: int = 0

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def authorization(self) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == "authorization"), None)


_RECORD = web.RequestKey("discord_standin_record", RecordedRequest)


@dataclass
class Reply:
    """A response, follow-up, edit or channel message the bot sent."""

    kind: str  # "callback", "followup", "edit" or "channel"
    payload: dict[str, Any]  # message fields as sent (a callback's "data")
    files: dict[str, bytes]  # uploaded files by filename
    type: int | None = None  # interaction callback type, for kind == "callback"
    message_id: int | None = None  # id of the message it created or changed
    effective_flags: int = 0  # message flags as Discord would apply them

    @property
    def content(self) -> str | None:
        value = self.payload.get("content")
        return None if value is None else str(value)

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.payload.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        return list(self.payload.get("components") or [])

    @property
    def flags(self) -> int:
        """Flags exactly as the bot sent them."""
        return int(self.payload.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        """Whether the resulting message is ephemeral (a deferral's flag carries over)."""
        return bool(self.effective_flags & EPHEMERAL)

    @property
    def deferred(self) -> bool:
        return self.type in (5, 6)

    @property
    def thinking(self) -> bool:
        return self.type == 5


@dataclass
class SyncRecord:
    """One bulk overwrite of application commands (``CommandTree.sync``)."""

    guild_id: int | None  # None for global commands
    commands: list[dict[str, Any]]  # as echoed back, with ids

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.commands]

    def command(self, name: str) -> dict[str, Any]:
        return next(c for c in self.commands if c["name"] == name)


@dataclass
class FailureRule:
    """An injected failure: the next ``times`` requests matching ``pattern`` fail."""

    pattern: re.Pattern[str]
    status: int
    retry_after: float
    global_: bool
    times: int
    code: int
    message: str
    hits: int = 0

    def response(self) -> web.Response:
        if self.status == 429:
            body = {
                "message": "You are being rate limited.",
                "retry_after": self.retry_after,
                "global": self.global_,
                "code": self.code,
            }
            headers = {
                # discord.py treats a 429 without Via as a Cloudflare ban and raises at once.
                "Via": "1.1 google",
                "Retry-After": str(max(1, round(self.retry_after))),
                "X-RateLimit-Scope": "global" if self.global_ else "user",
            }
            if self.global_:
                headers["X-RateLimit-Global"] = "true"
            return _json_response(body, status=429, headers=headers)
        return _error(self.status, self.code, self.message)


class InteractionRecord:
    """An interaction the stand-in dispatched and everything the bot answered to it."""

    def __init__(self, standin: DiscordStandIn, payload: dict[str, Any]) -> None:
        self._standin = standin
        self.payload = payload
        self.id = int(payload["id"])
        self.token: str = payload["token"]
        self.attachment_size_limit: int = int(payload["attachment_size_limit"])
        self.channel_id = int(payload["channel"]["id"])
        self.guild_id: int | None = int(payload["guild_id"]) if "guild_id" in payload else None
        self.response: Reply | None = None
        self.followups: list[Reply] = []
        self.edits: list[Reply] = []
        self.deleted_message_ids: list[int] = []
        self.original_message_id: int | None = None
        self.message_ids: set[int] = set()
        self._awaiting_first_followup = False
        self._defer_flags = 0

    @property
    def data(self) -> dict[str, Any]:
        return dict(self.payload.get("data") or {})

    @property
    def original_message(self) -> dict[str, Any] | None:
        """The original response message as it stands now (after edits), if any."""
        if self.original_message_id is None:
            return None
        return self._standin.messages.get(self.original_message_id)

    @property
    def replies(self) -> list[Reply]:
        first = [self.response] if self.response is not None else []
        return first + self.followups + self.edits

    async def wait_response(self, timeout: float = 5.0) -> Reply:
        """The initial callback (message, deferral or update)."""
        await self._standin.wait_until(
            lambda: self.response is not None, timeout, f"a response to interaction {self.id}"
        )
        assert self.response is not None
        return self.response

    async def wait_followups(self, count: int = 1, timeout: float = 5.0) -> list[Reply]:
        """The first ``count`` follow-up messages."""
        await self._standin.wait_until(
            lambda: len(self.followups) >= count,
            timeout,
            f"{count} follow-up(s) to interaction {self.id}",
        )
        return self.followups[:count]

    async def wait_edits(self, count: int = 1, timeout: float = 5.0) -> list[Reply]:
        """The first ``count`` edits of the original response or follow-ups."""
        await self._standin.wait_until(
            lambda: len(self.edits) >= count, timeout, f"{count} edit(s) of interaction {self.id}"
        )
        return self.edits[:count]


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    query: dict[str, str]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session_id: str | None = None
    ready: bool = False

    @property
    def open(self) -> bool:
        return self.ready and not self.ws.closed


@dataclass
class _Session:
    session_id: str
    seq: int = 0


class DiscordStandIn:
    """Local Discord: REST under /api/v10, gateway at /gateway, attachments under /attachments."""

    def __init__(
        self,
        *,
        app_id: int = 1_100_000_000_000_000_001,
        guild_id: int = 1_100_000_000_000_000_002,
        channel_id: int = 1_100_000_000_000_000_003,
        user_id: int = 1_100_000_000_000_000_004,
        token: str = "standin-bot-token",
        bot_name: str = "animebot",
        guild_name: str = "Stand-in Guild",
        guild_locale: str = "en-US",
        heartbeat_interval_ms: int = 41_250,
        send_guild_create: bool | None = None,
    ) -> None:
        self.app_id = app_id
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.user_id = user_id
        self.token = token
        self.bot_name = bot_name
        self.guild_name = guild_name
        self.guild_locale = guild_locale
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # None: send GUILD_CREATE only when IDENTIFY asks for the GUILDS intent, as Discord does.
        self.send_guild_create = send_guild_create

        self.requests: list[RecordedRequest] = []
        self.syncs: list[SyncRecord] = []
        self.interactions: list[InteractionRecord] = []
        self.channel_messages: list[Reply] = []
        self.gateway_received: list[dict[str, Any]] = []  # frames the client sent
        self.identify_count = 0
        self.resume_count = 0
        self.heartbeat_count = 0
        self.messages: dict[int, dict[str, Any]] = {}
        self.errors: list[Exception] = []  # exceptions raised inside request handlers

        self._commands: dict[int | None, dict[tuple[str, int], dict[str, Any]]] = {}
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self._by_id: dict[int, InteractionRecord] = {}
        self._by_token: dict[str, InteractionRecord] = {}
        self._files: dict[int, tuple[str, bytes, str]] = {}
        self._failures: list[FailureRule] = []
        self._connections: list[_Connection] = []
        self._sessions: dict[str, _Session] = {}
        self._counter = itertools.count(1)
        self._cond = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> DiscordStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=256 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._download)
        r = app.router
        p = API_PREFIX
        r.add_get(p + "/gateway", self._get_gateway)
        r.add_get(p + "/gateway/bot", self._get_gateway)
        r.add_get(p + "/users/@me", self._get_me)
        r.add_get(p + "/oauth2/applications/@me", self._get_application)
        r.add_get(p + "/applications/@me", self._get_application)
        r.add_get(p + "/applications/{app_id}/commands", self._get_commands)
        r.add_put(p + "/applications/{app_id}/commands", self._put_commands)
        r.add_get(p + "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands)
        r.add_put(p + "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands)
        r.add_post(p + "/interactions/{interaction_id}/{token}/callback", self._callback)
        r.add_post(p + "/webhooks/{app_id}/{token}", self._followup)
        r.add_get(p + "/webhooks/{app_id}/{token}/messages/{message_id}", self._get_webhook_message)
        r.add_patch(
            p + "/webhooks/{app_id}/{token}/messages/{message_id}", self._edit_webhook_message
        )
        r.add_delete(
            p + "/webhooks/{app_id}/{token}/messages/{message_id}", self._delete_webhook_message
        )
        r.add_get(p + "/channels/{channel_id}", self._get_channel)
        r.add_post(p + "/channels/{channel_id}/typing", self._typing)
        r.add_post(p + "/channels/{channel_id}/messages", self._post_channel_message)
        r.add_get(p + "/channels/{channel_id}/messages/{message_id}", self._get_channel_message)
        r.add_patch(p + "/channels/{channel_id}/messages/{message_id}", self._edit_channel_message)
        r.add_delete(
            p + "/channels/{channel_id}/messages/{message_id}", self._delete_channel_message
        )
        r.add_route("*", "/{tail:.*}", self._not_found)

        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def stop(self) -> None:
        for conn in list(self._connections):
            if not conn.ws.closed:
                await conn.ws.close(code=1001, message=b"stand-in stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE``."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> yarl.URL:
        """Value for ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``."""
        return yarl.URL(f"ws://127.0.0.1:{self.port}/gateway")

    # ------------------------------------------------------------------ waiting

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait (event-driven) until ``predicate()`` holds; TimeoutError names what was awaited."""
        async with self._cond:
            try:
                async with asyncio.timeout(timeout):
                    await self._cond.wait_for(predicate)
            except TimeoutError:
                recent = ", ".join(f"{r.route}->{r.status}" for r in self.requests[-8:])
                raise TimeoutError(
                    f"stand-in: timed out after {timeout}s waiting for {what}; "
                    f"recent requests: {recent or 'none'}"
                ) from None

    async def wait_ready(self, timeout: float = 10.0, *, identifies: int = 1) -> None:
        """Wait until a client has identified (READY, and GUILD_CREATE if any, sent)."""
        await self.wait_until(
            lambda: self.identify_count >= identifies and self._active() is not None,
            timeout,
            "a gateway IDENTIFY",
        )

    async def wait_resumed(self, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait_until(
            lambda: self.resume_count >= count and self._active() is not None,
            timeout,
            f"{count} gateway RESUME(s)",
        )

    async def wait_for_sync(
        self, timeout: float = 10.0, *, count: int = 1, guild_id: int | bool | None = False
    ) -> list[SyncRecord]:
        """Wait for ``count`` command syncs (``guild_id=False``: any scope; None: global only)."""

        def matching() -> list[SyncRecord]:
            if guild_id is False:
                return list(self.syncs)
            return [s for s in self.syncs if s.guild_id == guild_id]

        await self.wait_until(lambda: len(matching()) >= count, timeout, f"{count} command sync(s)")
        return matching()

    async def wait_for_requests(
        self, pattern: str, count: int = 1, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until ``count`` answered requests match the regex ``pattern`` ("METHOD /path")."""
        await self.wait_until(
            lambda: len(self.requests_matching(pattern)) >= count,
            timeout,
            f"{count} request(s) matching {pattern!r}",
        )
        return self.requests_matching(pattern)

    def requests_matching(self, pattern: str) -> list[RecordedRequest]:
        rx = re.compile(pattern)
        return [r for r in self.requests if r.status and rx.search(r.route)]

    # ------------------------------------------------------------------ error injection

    def fail_next(
        self,
        route_pattern: str,
        status: int = 429,
        *,
        retry_after: float = 0.05,
        global_: bool = False,
        times: int = 1,
        code: int = 0,
        message: str | None = None,
    ) -> FailureRule:
        """Fail the next ``times`` requests whose "METHOD /path" matches ``route_pattern`` (regex).

        Paths are below /api/v10, e.g. ``r"POST /webhooks/"``. 429 answers carry ``retry_after``
        (and ``global``); discord.py sleeps that long and retries. For 500/502/504 discord.py
        sleeps 1 + 2*attempt seconds before retrying (5 attempts in all).
        """
        rule = FailureRule(
            pattern=re.compile(route_pattern),
            status=status,
            retry_after=retry_after,
            global_=global_,
            times=times,
            code=code,
            message=message or {500: "Internal Server Error"}.get(status, f"{status} error"),
        )
        self._failures.append(rule)
        return rule

    def _take_failure(self, route: str) -> FailureRule | None:
        for rule in self._failures:
            if rule.hits < rule.times and rule.pattern.search(route):
                rule.hits += 1
                return rule
        return None

    # ------------------------------------------------------------------ ids and payloads

    def snowflake(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)

    def user_payload(self, user_id: int | None = None, *, bot: bool = False) -> dict[str, Any]:
        uid = self.user_id if user_id is None else user_id
        name = self.bot_name if bot else f"user{uid % 10_000}"
        return {
            "id": str(uid),
            "username": name,
            "global_name": None if bot else name.title(),
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
            "flags": 0,
        }

    def bot_user(self) -> dict[str, Any]:
        return {
            **self.user_payload(self.app_id, bot=True),
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "email": None,
        }

    def member_payload(
        self, user_id: int | None = None, *, permissions: str | None = None
    ) -> dict[str, Any]:
        member: dict[str, Any] = {
            "user": self.user_payload(user_id),
            "roles": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "nick": None,
            "avatar": None,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            member["permissions"] = permissions
        return member

    def channel_payload(self, channel_id: int | None = None) -> dict[str, Any]:
        cid = self.channel_id if channel_id is None else channel_id
        return {
            "id": str(cid),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "general" if cid == self.channel_id else f"channel-{cid % 10_000}",
            "position": 0,
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }

    def guild_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "unavailable": False,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.user_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.guild_locale,
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "features": [],
            "member_count": 2,
            "large": False,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "roles": [
                {
                    "id": str(self.guild_id),
                    "name": "@everyone",
                    "permissions": MEMBER_PERMISSIONS,
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "icon": None,
                    "unicode_emoji": None,
                    "flags": 0,
                }
            ],
            "channels": [self.channel_payload()],
            "members": [{**self.member_payload(self.app_id), "user": self.bot_user()}],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "emojis": [],
            "stickers": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def host_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """Serve ``data`` from the stand-in and return an attachment object pointing at it."""
        ctype = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        aid = self.snowflake()
        cid = self.channel_id if channel_id is None else channel_id
        self._files[aid] = (filename, data, ctype)
        url = f"{self.base_url}/attachments/{cid}/{aid}/{filename}"
        attachment: dict[str, Any] = {
            "id": str(aid),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url + "?proxy=1",
            "content_type": ctype,
            "flags": 0,
        }
        if ctype.startswith("image/"):
            size = _image_size(data)
            if size is not None:
                attachment["width"], attachment["height"] = size
        return attachment

    def attachment_bytes(self, attachment_id: int | str) -> bytes:
        return self._files[int(attachment_id)][1]

    def make_message(
        self,
        attachments: Sequence[AttachmentSpec] = (),
        *,
        content: str = "",
        author_id: int | None = None,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """A user's message (e.g. the target of a message command) with hosted attachments."""
        cid = self.channel_id if channel_id is None else channel_id
        message = self._message(
            content=content,
            author=self.user_payload(author_id),
            attachments=[self.host_attachment(n, d, t, channel_id=cid) for n, d, t in attachments],
            channel_id=cid,
            message_type=0,
        )
        self.messages[int(message["id"])] = message
        return message

    def _message(
        self,
        *,
        content: str = "",
        author: dict[str, Any] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        embeds: list[dict[str, Any]] | None = None,
        components: list[dict[str, Any]] | None = None,
        flags: int = 0,
        channel_id: int | None = None,
        message_type: int = 0,
        webhook: bool = False,
    ) -> dict[str, Any]:
        cid = self.channel_id if channel_id is None else channel_id
        message: dict[str, Any] = {
            "id": str(self.snowflake()),
            "type": message_type,
            "channel_id": str(cid),
            "author": author or self.user_payload(self.app_id, bot=True),
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "components": components or [],
            "pinned": False,
            "flags": flags,
        }
        if cid == self.channel_id:
            message["guild_id"] = str(self.guild_id)
        if webhook:
            message["webhook_id"] = str(self.app_id)
            message["application_id"] = str(self.app_id)
        return message

    # ------------------------------------------------------------------ commands

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """Currently registered commands (global when ``guild_id`` is None)."""
        return list(self._commands.get(guild_id, {}).values())

    def register_commands(
        self, commands: Sequence[Mapping[str, Any]], guild_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Bulk-overwrite commands as Discord does (stable ids per name and type)."""
        stored: dict[tuple[str, int], dict[str, Any]] = {}
        for raw in commands:
            cmd = dict(raw)
            ctype = int(cmd.get("type", CHAT_INPUT))
            key = (guild_id, cmd["name"], ctype)
            cmd_id = self._command_ids.setdefault(key, self.snowflake())
            cmd.update(
                id=str(cmd_id),
                application_id=str(self.app_id),
                version=str(self.snowflake()),
                type=ctype,
                description=cmd.get("description", ""),
                options=cmd.get("options", []),
                default_member_permissions=cmd.get("default_member_permissions"),
                nsfw=cmd.get("nsfw", False),
            )
            if guild_id is not None:
                cmd["guild_id"] = str(guild_id)
            stored[(cmd["name"], ctype)] = cmd
        self._commands[guild_id] = stored
        return list(stored.values())

    def _find_command(
        self, name: str, ctype: int, guild_id: int | None
    ) -> tuple[dict[str, Any], bool]:
        if guild_id is not None:
            cmd = self._commands.get(guild_id, {}).get((name, ctype))
            if cmd is not None:
                return cmd, True
        cmd = self._commands.get(None, {}).get((name, ctype))
        if cmd is None:
            raise LookupError(
                f"command {name!r} (type {ctype}) is not registered; let the client sync first "
                "(standin.wait_for_sync) or call standin.register_commands"
            )
        return cmd, False

    def _build_options(
        self,
        schema: Sequence[Mapping[str, Any]],
        values: Mapping[str, Any],
        attachments: Mapping[str, AttachmentSpec | dict[str, Any]],
        resolved: dict[str, dict[str, Any]],
        channel_id: int,
    ) -> list[dict[str, Any]]:
        by_name = {o["name"]: o for o in schema}
        unknown = (set(values) | set(attachments)) - set(by_name)
        if schema and unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}; command has {sorted(by_name)}")
        for opt in schema:
            required = opt.get("required", False)
            if required and opt["name"] not in values and opt["name"] not in attachments:
                raise ValueError(f"required option {opt['name']!r} missing")
        out: list[dict[str, Any]] = []
        for name, spec in attachments.items():
            att = (
                spec
                if isinstance(spec, dict)
                else self.host_attachment(*spec, channel_id=channel_id)
            )
            resolved.setdefault("attachments", {})[att["id"]] = att
            out.append({"name": name, "type": OPT_ATTACHMENT, "value": att["id"]})
        for name, value in values.items():
            opt = by_name.get(name, {})
            otype = int(opt.get("type", 0)) or _infer_option_type(value)
            choices = [c["value"] for c in opt.get("choices") or []]
            if choices and value not in choices:
                raise ValueError(f"{value!r} is not a choice of option {name!r}: {choices}")
            if otype == OPT_USER:
                uid = str(int(value))
                member = {k: v for k, v in self.member_payload(int(uid)).items() if k != "user"}
                resolved.setdefault("users", {})[uid] = self.user_payload(int(uid))
                resolved.setdefault("members", {})[uid] = member
                value = uid
            out.append({"name": name, "type": otype, "value": value})
        return out

    # ------------------------------------------------------------------ dispatching

    def _active(self) -> _Connection | None:
        for conn in reversed(self._connections):
            if conn.open:
                return conn
        return None

    async def _send(self, conn: _Connection, frame: dict[str, Any]) -> None:
        async with conn.lock:
            await conn.ws.send_str(json.dumps(frame))

    async def _send_dispatch(self, conn: _Connection, event: str, data: Any) -> None:
        assert conn.session_id is not None
        session = self._sessions[conn.session_id]
        session.seq += 1
        await self._send(conn, {"op": 0, "t": event, "s": session.seq, "d": data})

    async def dispatch(self, event: str, data: Any, *, timeout: float = 10.0) -> None:
        """Send a gateway DISPATCH (op 0) event to the connected client."""
        await self.wait_ready(timeout)
        conn = self._active()
        assert conn is not None
        await self._send_dispatch(conn, event, data)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT: discord.py reconnects to resume_gateway_url and RESUMEs."""
        conn = self._active()
        if conn is None:
            raise RuntimeError("no identified gateway connection")
        await self._send(conn, {"op": 7, "d": None, "s": None, "t": None})

    def _interaction_payload(
        self,
        itype: int,
        data: dict[str, Any] | None,
        *,
        user_id: int | None,
        guild_id: int | None,
        channel_id: int | None,
        dm: bool,
        locale: str,
        permissions: str,
        app_permissions: str,
        attachment_size_limit: int,
    ) -> dict[str, Any]:
        iid = self.snowflake()
        uid = self.user_id if user_id is None else user_id
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.app_id),
            "type": itype,
            "token": f"itoken-{iid}-{secrets.token_hex(8)}",
            "version": 1,
            "locale": locale,
            "app_permissions": app_permissions,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": attachment_size_limit,
        }
        if data is not None:
            payload["data"] = data
        if dm:
            dm_id = self.snowflake() if channel_id is None else channel_id
            payload["channel"] = {
                "id": str(dm_id),
                "type": 1,
                "recipients": [self.user_payload(uid)],
                "last_message_id": None,
                "flags": 0,
            }
            payload["channel_id"] = str(dm_id)
            payload["user"] = self.user_payload(uid)
            payload["context"] = 1  # BOT_DM
            payload["authorizing_integration_owners"] = {"0": "0"}
        else:
            gid = self.guild_id if guild_id is None else guild_id
            channel = self.channel_payload(channel_id)
            channel["guild_id"] = str(gid)
            channel["permissions"] = permissions
            payload["guild_id"] = str(gid)
            payload["guild"] = {"id": str(gid), "locale": self.guild_locale, "features": []}
            payload["guild_locale"] = self.guild_locale
            payload["channel"] = channel
            payload["channel_id"] = channel["id"]
            payload["member"] = self.member_payload(uid, permissions=permissions)
            payload["context"] = 0  # GUILD
            payload["authorizing_integration_owners"] = {"0": str(gid)}
        return payload

    async def _invoke(self, payload: dict[str, Any], timeout: float) -> InteractionRecord:
        await self.wait_ready(timeout)
        record = InteractionRecord(self, payload)
        self.interactions.append(record)
        self._by_id[record.id] = record
        self._by_token[record.token] = record
        conn = self._active()
        assert conn is not None
        await self._send_dispatch(conn, "INTERACTION_CREATE", payload)
        return record

    async def invoke_slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        attachments: Mapping[str, AttachmentSpec | dict[str, Any]] | None = None,
        user_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        dm: bool = False,
        locale: str = "en-US",
        permissions: str = MEMBER_PERMISSIONS,
        app_permissions: str = ADMIN_PERMISSIONS,
        attachment_size_limit: int = 8 * 1024 * 1024,
        timeout: float = 10.0,
    ) -> InteractionRecord:
        """Dispatch a slash command (``name`` may be "group sub" for sub-commands).

        ``options`` map names to values (typed from the registered command: 3 string,
        4 integer, 5 boolean, 6 user id, 10 number; values must be among its choices);
        ``attachments`` map option names to (filename, bytes, content_type) hosted by the
        stand-in (or to an attachment object from host_attachment).
        """
        parts = name.split()
        scope_guild = None if dm else (self.guild_id if guild_id is None else guild_id)
        command, guild_scoped = self._find_command(parts[0], CHAT_INPUT, scope_guild)
        resolved: dict[str, dict[str, Any]] = {}
        cid = None if dm else (self.channel_id if channel_id is None else channel_id)
        schema: Sequence[Mapping[str, Any]] = command.get("options") or []
        chain: list[tuple[str, int]] = []
        for part in parts[1:]:
            sub = next((o for o in schema if o["name"] == part), None)
            if sub is None or sub.get("type") not in (OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP):
                raise LookupError(f"{part!r} is not a sub-command of {parts[0]!r}")
            chain.append((part, int(sub["type"])))
            schema = sub.get("options") or []
        nested = self._build_options(
            schema, options or {}, attachments or {}, resolved, cid or self.channel_id
        )
        for sub_name, sub_type in reversed(chain):
            nested = [{"name": sub_name, "type": sub_type, "options": nested}]
        data: dict[str, Any] = {
            "id": command["id"],
            "name": parts[0],
            "type": CHAT_INPUT,
            "options": nested,
        }
        if resolved:
            data["resolved"] = resolved
        if guild_scoped:
            data["guild_id"] = command["guild_id"]
        payload = self._interaction_payload(
            2,
            data,
            user_id=user_id,
            guild_id=guild_id,
            channel_id=channel_id,
            dm=dm,
            locale=locale,
            permissions=permissions,
            app_permissions=app_permissions,
            attachment_size_limit=attachment_size_limit,
        )
        return await self._invoke(payload, timeout)

    async def invoke_message_command(
        self,
        name: str,
        message: dict[str, Any],
        *,
        user_id: int | None = None,
        guild_id: int | None = None,
        locale: str = "en-US",
        permissions: str = MEMBER_PERMISSIONS,
        attachment_size_limit: int = 8 * 1024 * 1024,
        timeout: float = 10.0,
    ) -> InteractionRecord:
        """Dispatch a message context-menu command targeting ``message`` (see make_message)."""
        scope_guild = self.guild_id if guild_id is None else guild_id
        command, guild_scoped = self._find_command(name, MESSAGE_COMMAND, scope_guild)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": MESSAGE_COMMAND,
            "target_id": message["id"],
            "resolved": {"messages": {message["id"]: message}},
        }
        if guild_scoped:
            data["guild_id"] = command["guild_id"]
        payload = self._interaction_payload(
            2,
            data,
            user_id=user_id,
            guild_id=guild_id,
            channel_id=int(message["channel_id"]),
            dm=False,
            locale=locale,
            permissions=permissions,
            app_permissions=ADMIN_PERMISSIONS,
            attachment_size_limit=attachment_size_limit,
        )
        return await self._invoke(payload, timeout)

    async def invoke_user_command(
        self,
        name: str,
        target_user_id: int,
        *,
        user_id: int | None = None,
        locale: str = "en-US",
        timeout: float = 10.0,
    ) -> InteractionRecord:
        """Dispatch a user context-menu command targeting ``target_user_id``."""
        command, guild_scoped = self._find_command(name, USER_COMMAND, self.guild_id)
        tid = str(target_user_id)
        member = {k: v for k, v in self.member_payload(target_user_id).items() if k != "user"}
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": USER_COMMAND,
            "target_id": tid,
            "resolved": {
                "users": {tid: self.user_payload(target_user_id)},
                "members": {tid: member},
            },
        }
        if guild_scoped:
            data["guild_id"] = command["guild_id"]
        payload = self._interaction_payload(
            2,
            data,
            user_id=user_id,
            guild_id=None,
            channel_id=None,
            dm=False,
            locale=locale,
            permissions=MEMBER_PERMISSIONS,
            app_permissions=ADMIN_PERMISSIONS,
            attachment_size_limit=8 * 1024 * 1024,
        )
        return await self._invoke(payload, timeout)

    async def invoke_component(
        self,
        custom_id: str,
        message: dict[str, Any],
        *,
        component_type: int = 2,
        values: Sequence[str] | None = None,
        user_id: int | None = None,
        locale: str = "en-US",
        timeout: float = 10.0,
    ) -> InteractionRecord:
        """Dispatch a component interaction (button 2, string select 3) on ``message``."""
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        payload = self._interaction_payload(
            3,
            data,
            user_id=user_id,
            guild_id=None,
            channel_id=int(message["channel_id"]),
            dm=False,
            locale=locale,
            permissions=MEMBER_PERMISSIONS,
            app_permissions=ADMIN_PERMISSIONS,
            attachment_size_limit=8 * 1024 * 1024,
        )
        payload["message"] = message
        return await self._invoke(payload, timeout)

    # ------------------------------------------------------------------ HTTP plumbing

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        rec = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        self.requests.append(rec)
        request[_RECORD] = rec
        response: web.StreamResponse
        try:
            await self._read_body(request, rec)
            rule = self._take_failure(rec.route)
            response = rule.response() if rule is not None else await handler(request)
        except web.HTTPException as exc:
            response = _error(exc.status, 0, f"{exc.status}: {exc.reason}")
        except Exception as exc:
            # A stand-in bug or a request it cannot handle: answer 400 (discord.py raises at
            # once; a 500 would be retried for ~25 s) and keep the error for the test.
            self.errors.append(exc)
            response = _error(400, 0, f"stand-in error: {exc!r}")
        rec.status = response.status
        await self._notify()
        return response

    @staticmethod
    async def _read_body(request: web.Request, rec: RecordedRequest) -> None:
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader)
                body = await part.read(decode=False)
                if part.name == "payload_json":
                    rec.json = json.loads(body)
                elif part.filename is not None:
                    rec.files.append((part.filename, bytes(body)))
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                rec.json = json.loads(raw) if request.content_type == JSON_CONTENT_TYPE else raw

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(404, 0, f"404: Not Found ({request.method} {request.path})")

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, 0, "401: Unauthorized")
        return None

    def _check_app(self, request: web.Request) -> web.Response | None:
        if request.match_info.get("app_id") != str(self.app_id):
            return _error(404, 10002, "Unknown Application")
        return None

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json_response(
            {
                "url": str(self.gateway_url),
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_me(self, request: web.Request) -> web.Response:
        return self._check_auth(request) or _json_response(self.bot_user())

    async def _get_application(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        return _json_response(
            {
                "id": str(self.app_id),
                "name": self.bot_name,
                "icon": None,
                "description": "stand-in application",
                "summary": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": self.user_payload(self.user_id),
                "team": None,
                "flags": 0,
                "bot": self.bot_user(),
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "tags": [],
            }
        )

    def _scope(self, request: web.Request) -> int | None:
        gid = request.match_info.get("guild_id")
        return None if gid is None else int(gid)

    async def _get_commands(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request) or self._check_app(request)) is not None:
            return denied
        return _json_response(self.commands(self._scope(request)))

    async def _put_commands(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request) or self._check_app(request)) is not None:
            return denied
        body = request[_RECORD].json
        if not isinstance(body, list):
            return _error(400, 50035, "Invalid Form Body")
        scope = self._scope(request)
        echoed = self.register_commands(body, scope)
        self.syncs.append(SyncRecord(guild_id=scope, commands=echoed))
        return _json_response(echoed)

    def _upload(
        self, rec: RecordedRequest, channel_id: int, limit: int | None
    ) -> tuple[list[dict[str, Any]], dict[str, bytes]] | web.Response:
        if limit is not None and sum(len(data) for _, data in rec.files) > limit:
            return _error(413, 40005, "Request entity too large")
        hosted = [self.host_attachment(n, d, channel_id=channel_id) for n, d in rec.files]
        return hosted, dict(rec.files)

    @staticmethod
    def _apply_edit(
        message: dict[str, Any], payload: Mapping[str, Any], hosted: list[dict[str, Any]]
    ) -> None:
        for key in ("content", "embeds", "components"):
            if key in payload and payload[key] is not None:
                message[key] = payload[key]
        flags = int(message.get("flags") or 0) & EPHEMERAL
        message["flags"] = flags | (int(payload.get("flags") or 0) & ~(EPHEMERAL | LOADING))
        if "attachments" in payload:
            keep = {str(a.get("id")) for a in payload.get("attachments") or []}
            message["attachments"] = [a for a in message["attachments"] if a["id"] in keep]
        message["attachments"] = list(message["attachments"]) + hosted

    async def _callback(self, request: web.Request) -> web.Response:
        record = self._by_id.get(int(request.match_info["interaction_id"]))
        if record is None or record.token != request.match_info["token"]:
            return _error(404, 10062, "Unknown interaction")
        if record.response is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        rec: RecordedRequest = request[_RECORD]
        body = rec.json if isinstance(rec.json, dict) else {}
        ctype = int(body.get("type", 0))
        data = dict(body.get("data") or {})
        flags = int(data.get("flags") or 0)
        uploaded = self._upload(rec, record.channel_id, record.attachment_size_limit)
        if isinstance(uploaded, web.Response):
            return uploaded
        hosted, files = uploaded
        message: dict[str, Any] | None = None
        if ctype in (4, 5):
            message = self._message(
                content=str(data.get("content") or "") if ctype == 4 else "",
                embeds=list(data.get("embeds") or []) if ctype == 4 else [],
                components=list(data.get("components") or []) if ctype == 4 else [],
                attachments=hosted,
                flags=(flags | LOADING) if ctype == 5 else flags,
                channel_id=record.channel_id,
                message_type=20 if record.payload["type"] == 2 else 19,
                webhook=True,
            )
            record.original_message_id = int(message["id"])
            record.message_ids.add(record.original_message_id)
            self.messages[record.original_message_id] = message
            record._awaiting_first_followup = ctype == 5
            record._defer_flags = flags & EPHEMERAL
        elif ctype == 7 and "message" in record.payload:
            message = self.messages.setdefault(
                int(record.payload["message"]["id"]), dict(record.payload["message"])
            )
            self._apply_edit(message, data, hosted)
        record.response = Reply(
            kind="callback",
            payload=data,
            files=files,
            type=ctype,
            message_id=int(message["id"]) if message else None,
            effective_flags=int(message["flags"]) & ~LOADING if message else flags,
        )
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        interaction: dict[str, Any] = {"id": str(record.id), "type": record.payload["type"]}
        if message is not None:
            interaction.update(
                response_message_id=message["id"],
                response_message_loading=ctype == 5,
                response_message_ephemeral=bool(flags & EPHEMERAL),
            )
        resource: dict[str, Any] = {"type": ctype}
        if message is not None:
            resource["message"] = message
        return _json_response({"interaction": interaction, "resource": resource})

    def _webhook_record(self, request: web.Request) -> InteractionRecord | web.Response:
        if (denied := self._check_app(request)) is not None:
            return denied
        record = self._by_token.get(request.match_info["token"])
        if record is None or record.response is None:
            return _error(404, 10015, "Unknown Webhook")
        return record

    async def _followup(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        if isinstance(record, web.Response):
            return record
        rec: RecordedRequest = request[_RECORD]
        body = rec.json if isinstance(rec.json, dict) else {}
        uploaded = self._upload(rec, record.channel_id, record.attachment_size_limit)
        if isinstance(uploaded, web.Response):
            return uploaded
        hosted, files = uploaded
        flags = int(body.get("flags") or 0)
        original = record.original_message_id
        if record._awaiting_first_followup and original is not None and original in self.messages:
            # The first follow-up after a deferral replaces the "thinking" message and keeps the
            # deferral's ephemeral setting.
            record._awaiting_first_followup = False
            message = self.messages[original]
            message["attachments"] = []
            self._apply_edit(message, body, hosted)
            effective = record._defer_flags | (flags & ~EPHEMERAL)
            message["flags"] = effective
        else:
            effective = flags
            message = self._message(
                content=str(body.get("content") or ""),
                embeds=list(body.get("embeds") or []),
                components=list(body.get("components") or []),
                attachments=hosted,
                flags=flags,
                channel_id=record.channel_id,
                webhook=True,
            )
            self.messages[int(message["id"])] = message
            record.message_ids.add(int(message["id"]))
        record.followups.append(
            Reply(
                kind="followup",
                payload=body,
                files=files,
                message_id=int(message["id"]),
                effective_flags=effective,
            )
        )
        if request.query.get("wait") in ("1", "true", "True"):
            return _json_response(message)
        return web.Response(status=204)

    def _webhook_message_id(self, record: InteractionRecord, raw: str) -> int | None:
        mid = record.original_message_id if raw == "@original" else int(raw)
        if mid is None or mid not in record.message_ids or mid not in self.messages:
            return None
        return mid

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        if isinstance(record, web.Response):
            return record
        mid = self._webhook_message_id(record, request.match_info["message_id"])
        if mid is None:
            return _error(404, 10008, "Unknown Message")
        return _json_response(self.messages[mid])

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        if isinstance(record, web.Response):
            return record
        mid = self._webhook_message_id(record, request.match_info["message_id"])
        if mid is None:
            return _error(404, 10008, "Unknown Message")
        rec: RecordedRequest = request[_RECORD]
        body = rec.json if isinstance(rec.json, dict) else {}
        uploaded = self._upload(rec, record.channel_id, record.attachment_size_limit)
        if isinstance(uploaded, web.Response):
            return uploaded
        hosted, files = uploaded
        message = self.messages[mid]
        self._apply_edit(message, body, hosted)
        message["edited_timestamp"] = _now_iso()
        if mid == record.original_message_id:
            record._awaiting_first_followup = False
        record.edits.append(
            Reply(
                kind="edit",
                payload=body,
                files=files,
                message_id=mid,
                effective_flags=int(message["flags"]),
            )
        )
        return _json_response(message)

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        if isinstance(record, web.Response):
            return record
        mid = self._webhook_message_id(record, request.match_info["message_id"])
        if mid is None:
            return _error(404, 10008, "Unknown Message")
        del self.messages[mid]
        record.deleted_message_ids.append(mid)
        return web.Response(status=204)

    async def _get_channel(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        if request.match_info["channel_id"] != str(self.channel_id):
            return _error(404, 10003, "Unknown Channel")
        return _json_response(self.channel_payload())

    async def _typing(self, request: web.Request) -> web.Response:
        return self._check_auth(request) or web.Response(status=204)

    async def _post_channel_message(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        rec: RecordedRequest = request[_RECORD]
        body = rec.json if isinstance(rec.json, dict) else {}
        cid = int(request.match_info["channel_id"])
        uploaded = self._upload(rec, cid, None)
        if isinstance(uploaded, web.Response):
            return uploaded
        hosted, files = uploaded
        message = self._message(
            content=str(body.get("content") or ""),
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            attachments=hosted,
            flags=int(body.get("flags") or 0),
            channel_id=cid,
        )
        self.messages[int(message["id"])] = message
        self.channel_messages.append(
            Reply(kind="channel", payload=body, files=files, message_id=int(message["id"]))
        )
        return _json_response(message)

    def _channel_message(self, request: web.Request) -> dict[str, Any] | None:
        message = self.messages.get(int(request.match_info["message_id"]))
        if message is None or message["channel_id"] != request.match_info["channel_id"]:
            return None
        return message

    async def _get_channel_message(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        message = self._channel_message(request)
        return _json_response(message) if message else _error(404, 10008, "Unknown Message")

    async def _edit_channel_message(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        message = self._channel_message(request)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        rec: RecordedRequest = request[_RECORD]
        uploaded = self._upload(rec, int(message["channel_id"]), None)
        if isinstance(uploaded, web.Response):
            return uploaded
        hosted, _ = uploaded
        self._apply_edit(message, rec.json if isinstance(rec.json, dict) else {}, hosted)
        message["edited_timestamp"] = _now_iso()
        return _json_response(message)

    async def _delete_channel_message(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        message = self._channel_message(request)
        if message is None:
            return _error(404, 10008, "Unknown Message")
        del self.messages[int(message["id"])]
        return web.Response(status=204)

    async def _download(self, request: web.Request) -> web.Response:
        entry = self._files.get(int(request.match_info["attachment_id"]))
        if entry is None or entry[0] != request.match_info["filename"]:
            return web.Response(status=404, text="not found")
        return web.Response(body=entry[1], headers={"Content-Type": entry[2]})

    # ------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        request[_RECORD].status = 101
        conn = _Connection(ws=ws, query=dict(request.query))
        self._connections.append(conn)
        try:
            await self._send(
                conn,
                {
                    "op": 10,
                    "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                    "s": None,
                    "t": None,
                },
            )
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.gateway_received.append(frame)
                await self._on_frame(conn, frame)
        finally:
            conn.ready = False
            await self._notify()
        return ws

    async def _on_frame(self, conn: _Connection, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        raw = frame.get("d")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if op == 1:
            self.heartbeat_count += 1
            await self._send(conn, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            if data.get("token") != self.token:
                await conn.ws.close(code=4004, message=b"Authentication failed.")
                return
            session = _Session(session_id=secrets.token_hex(16))
            self._sessions[session.session_id] = session
            conn.session_id = session.session_id
            ready: dict[str, Any] = {
                "v": 10,
                "user": self.bot_user(),
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "session_id": session.session_id,
                "session_type": "normal",
                "resume_gateway_url": str(self.gateway_url),
                "application": {"id": str(self.app_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "user_settings": {},
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["local"],
                "auth": {},
                "_trace": ["stand-in"],
            }
            if "shard" in data:
                ready["shard"] = data["shard"]
            await self._send_dispatch(conn, "READY", ready)
            guilds_intent = bool(int(data.get("intents") or 0) & 1)
            if self.send_guild_create or (self.send_guild_create is None and guilds_intent):
                await self._send_dispatch(conn, "GUILD_CREATE", self.guild_payload())
            conn.ready = True
            self.identify_count += 1
            await self._notify()
        elif op == 6:
            resumed = self._sessions.get(str(data.get("session_id")))
            if resumed is None or data.get("token") != self.token:
                await self._send(conn, {"op": 9, "d": False, "s": None, "t": None})
                return
            conn.session_id = resumed.session_id
            await self._send_dispatch(conn, "RESUMED", {"_trace": ["stand-in"]})
            conn.ready = True
            self.resume_count += 1
            await self._notify()
        # op 3 presence, 4 voice state, 8 request members: accepted and ignored.


def patch_discord(monkeypatch: pytest.MonkeyPatch, standin: DiscordStandIn) -> None:
    """Point discord.py's REST base and default gateway at ``standin`` for the current test."""
    import discord.gateway
    import discord.http

    monkeypatch.setattr(discord.http.Route, "BASE", standin.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", standin.gateway_url)
