"""A local stand-in for the Telegram Bot API, for tests and the load bench.

The real python-telegram-bot (PTB) 22 talks to it over real sockets on 127.0.0.1::

    from tests.standins.telegram_api import (
        TelegramStandIn, application_builder, make_user, private_chat, running_application,
    )

    async with TelegramStandIn() as api:
        app = application_builder(api).build()  # token, base_url, base_file_url preset
        app.add_handler(MessageHandler(filters.PHOTO, on_photo))
        async with running_application(app, api):  # polling without run_polling()
            alice = make_user(1001, language_code="en", first_name="Alice")
            sent = await api.send_photo(alice, private_chat(alice), jpeg_bytes)
            (reply,) = await api.wait_for("sendPhoto")
        assert reply.reply_to_message_id == sent["message_id"]
        assert reply.sources == {"photo": "upload"} and reply.files["photo"] == expected

``running_application`` starts PTB as ``run_polling`` would (``async with app``, post_init,
``updater.start_polling(poll_interval=0)``, ``app.start()``) and at exit releases the parked
long polls before ``updater.stop()`` and ``app.stop()``. ``make_bot(api)`` gives a plain
``telegram.Bot`` for tests that need no Application. The pytest fixture is in
``telegram_fixtures.py``.

What it does
- ``/bot<token>/<method>`` (GET or POST; form, multipart or JSON bodies; every non-string
  field is JSON inside its form field, string fields such as ``text`` are never decoded) and
  ``/file/bot<token>/<file_path>`` for downloads. A wrong token answers 401 (PTB:
  ``InvalidToken``), an unknown method 404 JSON (PTB: ``InvalidToken``, or
  ``EndPointNotFound`` from ``do_api_request``).
- getUpdates is real long polling: offsets confirm updates, ``limit`` and ``allowed_updates``
  apply, ``timeout`` parks the request on an ``asyncio.Condition`` until an update is pushed,
  a newer getUpdates supersedes it (409 Conflict, as on Telegram) and
  ``release_long_polls()`` / ``stop()`` answer it with ``[]``.
- Bot-sent messages get ids per chat and are stored, so edits and deletes can be checked in
  ``api.messages`` / ``api.sent_messages(chat_id)`` / ``api.deleted_messages``. Uploads are
  stored under a new file_id (the file_unique_id derives from the content); a later
  ``photo=<file_id>`` reuses the bytes; each ``Call.sources`` says "upload" or "file_id".
- Photos get three PhotoSize entries: 90 px and 320 px JPEG copies, encoded with PIL only
  when getFile asks for them (their ``file_size`` is an estimate until then), and the original
  bytes, unchanged, as the largest. Sizes come from PIL's header read. Unlike Telegram, the
  original is neither re-encoded nor EXIF-rotated.
- Every pushed update is checked (shape, then ``telegram.Update.de_json``) before it is
  queued: a malformed one raises ``InvalidUpdate`` in the test instead of jamming PTB's
  polling loop on the same offset forever.
- Telegram-like refusals: unknown chat, blocked user (403), message to edit/delete/reply to
  not found, message not modified, empty or too long text or caption, malformed HTML,
  unescaped MarkdownV2 characters ``#+-={}.!``, getFile over 20 MB, unknown or already
  answered callback queries. Descriptions follow Telegram's wording where known. PTB strips
  "Bad Request: " and lower-cases the rest (``str.capitalize``): match them case-insensitively.
- ``fail_next(method, status, ...)`` injects Telegram-shaped errors
  (``{"ok": false, "error_code", "description", "parameters": {"retry_after"}}``);
  ``hold_next(method)`` parks calls until the returned event is set. Nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import html
import io
import itertools
import json
import mimetypes
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from aiohttp import BodyPartReader, web
from PIL import Image
from telegram import Bot, Update
from telegram.constants import ChatAction, UpdateType
from telegram.ext import Application, ApplicationBuilder

JSONDict = dict[str, Any]

__all__ = [
    "Call",
    "InvalidUpdate",
    "StoredFile",
    "TelegramStandIn",
    "application_builder",
    "group_chat",
    "make_bot",
    "make_user",
    "private_chat",
    "running_application",
]

DEFAULT_TOKEN = "123456:TEST-TOKEN"
BOT_USERNAME = "animebot_test_bot"
PHOTO_SIDES = (90, 320)  # the downscaled PhotoSize entries; the original comes last
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile limit for bots
MAX_UPLOAD = 50 * 1024 * 1024  # upload limit for bots
MAX_LONG_POLL = 50.0

# Form fields that are plain strings even when they look like JSON ("123", "true", "null").
_STRING_FIELDS = frozenset(
    {
        "action",
        "animation",
        "audio",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "description",
        "document",
        "emoji",
        "file_id",
        "inline_message_id",
        "ip_address",
        "language_code",
        "message_effect_id",
        "name",
        "parse_mode",
        "photo",
        "secret_token",
        "short_description",
        "sticker",
        "text",
        "thumbnail",
        "title",
        "url",
        "video",
        "video_note",
        "voice",
    }
)
_MESSAGE_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_message",
        "edited_business_message",
    }
)
_UPDATE_TYPES = frozenset(t.value for t in UpdateType)
_CHAT_TYPES = frozenset({"private", "group", "supergroup", "channel"})
_CHAT_ACTIONS = frozenset(a.value for a in ChatAction)
_MEDIA_KEYS = ("photo", "document", "sticker", "voice", "video", "audio", "animation", "video_note")
_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "blockquote",
        "code",
        "del",
        "em",
        "i",
        "ins",
        "pre",
        "s",
        "span",
        "strike",
        "strong",
        "tg-emoji",
        "tg-spoiler",
        "u",
    }
)
_HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_MDV2_ALWAYS_RESERVED = frozenset("#+-={}.!")
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]+)?")
_BOT_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

Source = Literal["upload", "file_id"]


class InvalidUpdate(ValueError):
    """A pushed update that PTB could not parse (it would retry the same offset forever)."""


class ApiError(Exception):
    """Raised inside a method handler; answered as Telegram's error JSON."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------- public helpers


def make_user(
    user_id: int,
    language_code: str | None = "en",
    first_name: str | None = None,
    *,
    username: str | None = None,
    last_name: str | None = None,
    is_premium: bool | None = None,
) -> JSONDict:
    """A Telegram ``User`` dict for a human user."""
    user: JSONDict = {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name or f"User{user_id}",
    }
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    if is_premium is not None:
        user["is_premium"] = is_premium
    return user


def private_chat(user: Mapping[str, Any]) -> JSONDict:
    """The private ``Chat`` between the bot and ``user`` (its id is the user's id)."""
    chat: JSONDict = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    if "username" in user:
        chat["username"] = user["username"]
    return chat


def group_chat(chat_id: int, title: str = "Test group", *, supergroup: bool = False) -> JSONDict:
    """A group ``Chat`` (ids of groups are negative; supergroups start with -100)."""
    if chat_id >= 0:
        raise ValueError("group chat ids are negative")
    return {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}


@dataclass(frozen=True)
class Call:
    """One request the stand-in answered."""

    method: str  # canonical Bot API name ("sendPhoto"), or "download" for file fetches
    params: JSONDict  # decoded fields (JSON fallback per field)
    files: dict[str, bytes]  # multipart parts with a filename: part name -> bytes
    time: float  # time.monotonic() when the answer was ready
    status: int = 200
    result: Any = None  # the "result" sent back (None on errors)
    description: str | None = None  # the error description, on errors
    sources: dict[str, Source] = field(default_factory=dict)  # file field -> upload|file_id
    file_names: dict[str, str] = field(default_factory=dict)  # part name -> upload filename

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def chat_id(self) -> int | str | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None

    @property
    def reply_to_message_id(self) -> int | None:
        """From ``reply_parameters`` (PTB 22) or the older ``reply_to_message_id``."""
        reply = self.params.get("reply_parameters")
        if isinstance(reply, dict) and isinstance(reply.get("message_id"), int):
            return int(reply["message_id"])
        legacy = self.params.get("reply_to_message_id")
        return legacy if isinstance(legacy, int) else None


@dataclass
class StoredFile:
    """A file the stand-in serves; ``data`` is None for a downscaled copy not made yet."""

    kind: str  # photo, document, sticker, voice
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes | None
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    uploaded_by: Literal["bot", "user"] = "user"
    parent: StoredFile | None = None  # the original, for a downscaled PhotoSize
    group: tuple[str, ...] = ()  # photo: file_ids of all sizes, smallest first
    _size_estimate: int = 0

    @property
    def file_size(self) -> int:
        return len(self.data) if self.data is not None else self._size_estimate

    def photo_size(self) -> JSONDict:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
            "file_size": self.file_size,
        }


@dataclass
class _Upload:
    data: bytes
    filename: str | None
    content_type: str | None


@dataclass
class _Failure:
    status: int
    description: str
    parameters: JSONDict | None
    remaining: int
    match: Callable[[JSONDict], bool] | None


@dataclass
class _Hold:
    release: asyncio.Event
    remaining: int


@dataclass
class _Ctx:
    sources: dict[str, Source] = field(default_factory=dict)


Handler = Callable[[JSONDict, dict[str, _Upload], _Ctx], Awaitable[Any]]


# --------------------------------------------------------------------------- image helpers


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the image header (PIL opens lazily: no full decode)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:
        return None


def _scaled(width: int, height: int, side: int) -> tuple[int, int]:
    longest = max(width, height)
    if longest <= side:
        return width, height
    scale = side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _downscale(data: bytes, size: tuple[int, int]) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", size)  # JPEG: decode at reduced scale
        small = img.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=85)
    return out.getvalue()


# --------------------------------------------------------------------------- text checks


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _render_html(text: str) -> str:
    """Validate Telegram's HTML subset and return the plain text Telegram would store."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while True:
        lt = text.find("<", pos)
        out.append(text[pos : len(text) if lt < 0 else lt])
        if lt < 0:
            break
        m = _HTML_TAG.match(text, lt)
        offset = len(text[:lt].encode())
        if m is None:
            raise _bad(f"can't parse entities: Unexpected character '<' at byte offset {offset}")
        closing, name = m.group(1) == "/", m.group(2).lower()
        if name not in _HTML_TAGS:
            kind = "end" if closing else "start"
            raise _bad(
                f'can\'t parse entities: Unsupported {kind} tag "{name}" at byte offset {offset}'
            )
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            raise _bad(
                f"can't parse entities: Unmatched end tag at byte offset {offset}, expected \"</"
                f'{stack[-1] if stack else ""}>", found "</{name}>"'
            )
        pos = m.end()
    if stack:
        raise _bad(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\""
        )
    return html.unescape("".join(out))


def _check_markdown_v2(text: str) -> None:
    """The characters MarkdownV2 never uses as markup (``#+-={}.!``) must be escaped outside
    code and link targets; ``!`` may open a custom emoji (``![..](..)``)."""
    in_code = in_url = escaped = False
    previous = ""
    for index, char in enumerate(text):
        if escaped:
            escaped, previous = False, ""
            continue
        if char == "\\":
            escaped = True
        elif in_url:
            in_url = char != ")"
        elif char == "`":
            in_code = not in_code
        elif in_code:
            pass
        elif char == "(" and previous == "]":
            in_url = True
        elif char in _MDV2_ALWAYS_RESERVED and not (
            char == "!" and text[index + 1 : index + 2] == "["
        ):
            offset = len(text[:index].encode())
            raise _bad(
                f"can't parse entities: Character '{char}' is reserved and must be escaped "
                f"with the preceding '\\' (byte offset {offset})"
            )
        previous = char


def _render(text: str, parse_mode: Any) -> str:
    mode = str(parse_mode).lower() if parse_mode else ""
    if mode == "html":
        return _render_html(text)
    if mode == "markdownv2":
        _check_markdown_v2(text)
    return text


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise _bad(f"invalid {name} specified")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise _bad(f"invalid {name} specified") from None


def _decode(name: str, value: str) -> Any:
    if name in _STRING_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


# --------------------------------------------------------------------------- the stand-in


class TelegramStandIn:
    """An in-process Bot API server on 127.0.0.1; use as ``async with TelegramStandIn() as api``."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = BOT_USERNAME,
        bot_first_name: str = "Anime Bot",
    ) -> None:
        self.token = token
        self.bot_user: JSONDict = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        self.files: dict[str, StoredFile] = {}  # file_id -> file
        self.chats: dict[int, JSONDict] = {}
        self.blocked: set[int] = set()
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}  # (scope json, lang) -> list
        self.callback_answers: dict[str, JSONDict] = {}
        self.webhook: JSONDict | None = None
        self.internal_errors: list[Exception] = []  # bugs in the stand-in itself (answered 500)
        self.port = 0

        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._bot_sent: dict[int, list[int]] = {}  # chat id -> message ids, in order
        self._deleted: dict[tuple[int, int], JSONDict] = {}
        self._raw_text: dict[tuple[int, int], tuple[str, Any]] = {}  # (text|caption, entities)
        self._next_message_id: dict[int, int] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._callbacks: dict[str, JSONDict] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._holds: dict[str, deque[_Hold]] = {}
        self._ids = itertools.count(1)
        self._last_update_id = 0
        self._updates: deque[JSONDict] = deque()
        self._updates_cond = asyncio.Condition()
        self._calls_cond = asyncio.Condition()
        self._poll_generation = 0
        self._parked = 0
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, tuple[str, Handler]] = {}
        for name, handler in self._handlers().items():
            self._methods[name.lower()] = (name, handler)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_file)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._closing = False

    async def stop(self) -> None:
        await self.release_long_polls()
        for holds in self._holds.values():
            for hold in holds:
                hold.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def release_long_polls(self) -> None:
        """Answer every parked getUpdates with [] now, and all later ones at once (until
        ``resume_long_polls``). Call it before ``updater.stop()`` at teardown."""
        async with self._updates_cond:
            self._closing = True
            self._updates_cond.notify_all()

    def resume_long_polls(self) -> None:
        """Long polling parks again (for a bot restarted against the same stand-in)."""
        self._closing = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ------------------------------------------------------------------ test-facing state

    @property
    def messages(self) -> dict[tuple[int, int], JSONDict]:
        """Current messages (user and bot), keyed by (chat id, message id); deleted ones gone."""
        return dict(self._messages)

    @property
    def deleted_messages(self) -> dict[tuple[int, int], JSONDict]:
        return dict(self._deleted)

    def message(self, chat_id: int, message_id: int) -> JSONDict | None:
        return self._messages.get((chat_id, message_id))

    def sent_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[JSONDict]:
        """Messages the bot sent to ``chat_id``, oldest first, in their current state."""
        found: list[JSONDict] = []
        for message_id in self._bot_sent.get(chat_id, []):
            key = (chat_id, message_id)
            if key in self._messages:
                found.append(self._messages[key])
            elif include_deleted:
                found.append(self._deleted[key])
        return found

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def my_commands(
        self, language_code: str = "", scope: Mapping[str, Any] | None = None
    ) -> list[JSONDict]:
        return list(self.commands.get((self._scope_key(scope), language_code), []))

    @property
    def pending_updates(self) -> int:
        """Updates pushed but not yet confirmed by a getUpdates offset."""
        return len(self._updates)

    @property
    def parked_polls(self) -> int:
        return self._parked

    def mark(self) -> int:
        """An index into ``calls``; pass it as ``since=`` to wait only for later calls."""
        return len(self.calls)

    async def wait_for(
        self,
        method: str | None,
        predicate: Callable[[Call], bool] | None = None,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - the documented test-facing signature
        *,
        since: int = 0,
    ) -> list[Call]:
        """Wait until ``count`` calls of ``method`` (None: any) matching ``predicate`` exist
        in ``calls[since:]``; returns the first ``count`` of them."""
        found: list[Call] = []
        index = since
        try:
            async with asyncio.timeout(timeout), self._calls_cond:
                while True:
                    while index < len(self.calls):
                        call = self.calls[index]
                        index += 1
                        if (method is None or call.method == method) and (
                            predicate is None or predicate(call)
                        ):
                            found.append(call)
                            if len(found) >= count:
                                return found
                    await self._calls_cond.wait()
        except TimeoutError:
            seen = [f"{c.method}:{c.status}" for c in self.calls[since:]][-20:]
            raise AssertionError(
                f"timed out after {timeout}s waiting for {count} x {method}; matched "
                f"{len(found)}; last calls: {seen}; stand-in errors: {self.internal_errors}"
            ) from None

    async def wait_polling(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until a getUpdates request is parked (the bot is idle and listening)."""
        try:
            async with asyncio.timeout(timeout), self._updates_cond:
                await self._updates_cond.wait_for(lambda: self._parked > 0)
        except TimeoutError:
            raise AssertionError(f"no getUpdates was parked within {timeout}s") from None

    # ------------------------------------------------------------------ error injection

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: float | None = None,
        description: str | None = None,
        count: int = 1,
        parameters: JSONDict | None = None,
        match: Callable[[JSONDict], bool] | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` (whose params satisfy ``match``) with
        a Telegram-shaped error. 429 carries ``parameters.retry_after`` (default 1 s)."""
        name = self._canonical(method)
        params = dict(parameters or {})
        if status == 429:
            params.setdefault("retry_after", 1 if retry_after is None else retry_after)
            wait = params["retry_after"]
            description = description or f"Too Many Requests: retry after {wait}"
        elif retry_after is not None:
            params["retry_after"] = retry_after
        text = description or _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        failure = _Failure(status, text, params or None, count, match)
        self._failures.setdefault(name, deque()).append(failure)

    def hold_next(self, method: str, count: int = 1) -> asyncio.Event:
        """Park the next ``count`` calls of ``method`` before they are handled until the
        returned event is set (``stop()`` sets it too)."""
        hold = _Hold(asyncio.Event(), count)
        self._holds.setdefault(self._canonical(method), deque()).append(hold)
        return hold.release

    def block(self, chat_id: int) -> None:
        """Every later call aimed at ``chat_id`` answers 403 "bot was blocked by the user"."""
        self.blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self.blocked.discard(chat_id)

    def register_chat(self, chat: Mapping[str, Any]) -> None:
        self.chats[int(chat["id"])] = dict(chat)

    # ------------------------------------------------------------------ update builders

    async def push_update(self, update: Mapping[str, Any]) -> JSONDict:
        """Validate and queue a raw update (``update_id`` is assigned when missing)."""
        data: JSONDict = json.loads(json.dumps(update))  # a snapshot, JSON-clean or TypeError
        async with self._updates_cond:
            if "update_id" not in data:
                data = {"update_id": self._last_update_id + 1, **data}
            self.validate_update(data)
            if data["update_id"] <= self._last_update_id:
                raise InvalidUpdate(
                    f"update_id {data['update_id']} is not above the last ({self._last_update_id})"
                )
            self._last_update_id = data["update_id"]
            self._updates.append(data)
            self._updates_cond.notify_all()
        return data

    @staticmethod
    def validate_update(update: Mapping[str, Any]) -> None:
        """Raise ``InvalidUpdate`` unless PTB 22 can parse ``update`` into a usable Update."""
        update_id = update.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise InvalidUpdate("update_id must be an int")
        kinds = [k for k in update if k != "update_id"]
        if len(kinds) != 1 or kinds[0] not in _UPDATE_TYPES:
            raise InvalidUpdate(f"an update needs exactly one known update type, got {kinds}")
        kind = kinds[0]
        body = update[kind]
        if kind in _MESSAGE_UPDATES:
            _check_message(body, kind)
        elif kind == "callback_query":
            if not isinstance(body, dict) or not isinstance(body.get("id"), str):
                raise InvalidUpdate("callback_query.id must be a string")
            _check_user(body.get("from"), "callback_query.from")
            if not isinstance(body.get("chat_instance"), str):
                raise InvalidUpdate("callback_query.chat_instance must be a string")
            if "message" in body:
                _check_message(body["message"], "callback_query.message")
        try:
            parsed = Update.de_json(dict(update), bot=None)
        except Exception as exc:
            raise InvalidUpdate(f"PTB cannot parse the update: {exc!r}") from exc
        if parsed is None or parsed.update_id != update_id:
            raise InvalidUpdate("PTB parsed no update")

    async def push_message(
        self,
        user: Mapping[str, Any],
        chat: Mapping[str, Any] | None = None,
        *,
        update_type: str = "message",
        reply_to: Mapping[str, Any] | int | None = None,
        **content: Any,
    ) -> JSONDict:
        """Queue a user message with arbitrary content fields (``text=``, ``location=``...)."""
        chat = dict(chat) if chat is not None else private_chat(user)
        self.register_chat(chat)
        chat_id = int(chat["id"])
        message: JSONDict = {
            "message_id": self._new_message_id(chat_id),
            "from": dict(user),
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        if reply_to is not None:
            reply_id = reply_to if isinstance(reply_to, int) else int(reply_to["message_id"])
            target = self._messages.get((chat_id, reply_id))
            if target is None:
                raise ValueError(f"no message {reply_id} in chat {chat_id} to reply to")
            message["reply_to_message"] = _without_reply(target)
        key = (chat_id, message["message_id"])
        self._messages[key] = message  # stored first: the bot may act on it at once
        try:
            await self.push_update({update_type: message})
        except BaseException:
            del self._messages[key]
            raise
        return message

    async def send_text(
        self,
        user: Mapping[str, Any],
        chat: Mapping[str, Any] | None,
        text: str,
        reply_to: Mapping[str, Any] | int | None = None,
    ) -> JSONDict:
        """A text message; a leading ``/command`` gets its ``bot_command`` entity."""
        content: JSONDict = {"text": text}
        command = _COMMAND.match(text)
        if command:
            length = _utf16_len(command.group(0))
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return await self.push_message(user, chat, reply_to=reply_to, **content)

    async def send_photo(
        self,
        user: Mapping[str, Any],
        chat: Mapping[str, Any] | None,
        image_bytes: bytes,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: Mapping[str, Any] | int | None = None,
    ) -> JSONDict:
        """A photo message: 90 px and 320 px copies plus the original bytes as the largest."""
        sizes = self._store_photo(image_bytes, uploaded_by="user")
        content: JSONDict = {"photo": [s.photo_size() for s in sizes]}
        if caption is not None:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return await self.push_message(user, chat, reply_to=reply_to, **content)

    async def send_document(
        self,
        user: Mapping[str, Any],
        chat: Mapping[str, Any] | None,
        data: bytes,
        file_name: str,
        mime_type: str | None = None,
        caption: str | None = None,
    ) -> JSONDict:
        stored = self._store_file("document", data, file_name, mime_type, uploaded_by="user")
        content: JSONDict = {"document": _document_json(stored)}
        if caption is not None:
            content["caption"] = caption
        return await self.push_message(user, chat, **content)

    async def send_sticker(
        self,
        user: Mapping[str, Any],
        chat: Mapping[str, Any] | None,
        data: bytes,
        is_animated: bool = False,
        is_video: bool = False,
        emoji: str = "🙂",
    ) -> JSONDict:
        ext, mime = ("tgs", "application/x-tgsticker") if is_animated else ("webp", "image/webp")
        if is_video:
            ext, mime = "webm", "video/webm"
        stored = self._store_file("sticker", data, f"sticker.{ext}", mime, uploaded_by="user")
        width, height = (stored.width or 512, stored.height or 512)
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": width,
            "height": height,
            "is_animated": is_animated,
            "is_video": is_video,
            "emoji": emoji,
            "file_size": stored.file_size,
        }
        return await self.push_message(user, chat, sticker=sticker)

    async def send_video(
        self,
        user: Mapping[str, Any],
        chat: Mapping[str, Any] | None,
        data: bytes,
        kind: Literal["video", "animation", "video_note"] = "video",
        caption: str | None = None,
    ) -> JSONDict:
        """A video, an animation (Telegram's GIFs are soundless MP4s) or a round video note,
        with the size and duration Telegram would report (read with PyAV)."""
        ext, mime = ("mp4", "video/mp4")
        stored = self._store_file(kind, data, f"{kind}.{ext}", mime, uploaded_by="user")
        content: JSONDict = {kind: _video_json(stored, kind, {})}
        if caption is not None:
            content["caption"] = caption
        return await self.push_message(user, chat, **content)

    async def send_voice(
        self,
        user: Mapping[str, Any],
        chat: Mapping[str, Any] | None,
        data: bytes = b"OggS\x00stand-in voice",
        duration: int = 1,
    ) -> JSONDict:
        stored = self._store_file("voice", data, "voice.oga", "audio/ogg", uploaded_by="user")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": stored.file_size,
        }
        return await self.push_message(user, chat, voice=voice)

    async def send_location(
        self,
        user: Mapping[str, Any],
        chat: Mapping[str, Any] | None,
        latitude: float = 48.8584,
        longitude: float = 2.2945,
    ) -> JSONDict:
        return await self.push_message(
            user, chat, location={"latitude": latitude, "longitude": longitude}
        )

    async def edit_user_message(self, message: Mapping[str, Any], text: str) -> JSONDict:
        """The user edits their text message: an ``edited_message`` update."""
        key = (int(message["chat"]["id"]), int(message["message_id"]))
        current = self._messages.get(key)
        if current is None or "text" not in current:
            raise ValueError(f"no text message {key} to edit")
        edited = {**current, "text": text, "edit_date": int(time.time())}
        edited.pop("entities", None)
        self._messages[key] = edited
        try:
            await self.push_update({"edited_message": edited})
        except BaseException:
            self._messages[key] = current
            raise
        return edited

    async def press_button(
        self, user: Mapping[str, Any], message: Mapping[str, Any], callback_data: str
    ) -> JSONDict:
        """The user presses an inline button of ``message``: a ``callback_query`` update."""
        key = (int(message["chat"]["id"]), int(message["message_id"]))
        current = self._messages.get(key)
        if current is None:
            raise ValueError(f"message {key} does not exist (deleted?)")
        query_id = str(4_000_000_000_000 + next(self._ids))
        query: JSONDict = {
            "id": query_id,
            "from": dict(user),
            "message": current,
            "chat_instance": f"-{abs(key[0])}0042",
            "data": callback_data,
        }
        self._callbacks[query_id] = query
        await self.push_update({"callback_query": query})
        return query

    async def user_blocks_bot(self, user: Mapping[str, Any]) -> JSONDict:
        """The user blocks the bot: later sends answer 403, and a my_chat_member arrives."""
        chat = private_chat(user)
        self.register_chat(chat)
        self.block(int(user["id"]))
        now = int(time.time())
        update = {
            "my_chat_member": {
                "chat": chat,
                "from": dict(user),
                "date": now,
                "old_chat_member": {"status": "member", "user": self.bot_user},
                "new_chat_member": {"status": "kicked", "user": self.bot_user, "until_date": 0},
            }
        }
        return await self.push_update(update)

    # ------------------------------------------------------------------ HTTP plumbing

    def _canonical(self, method: str) -> str:
        entry = self._methods.get(method.lower())
        return entry[0] if entry else method

    async def _record(self, call: Call) -> None:
        async with self._calls_cond:
            self.calls.append(call)
            self._calls_cond.notify_all()

    @staticmethod
    def _json(status: int, payload: Any) -> web.Response:
        return web.Response(
            status=status, body=json.dumps(payload).encode(), content_type="application/json"
        )

    async def _read(self, request: web.Request) -> tuple[JSONDict, dict[str, _Upload]]:
        params: JSONDict = {key: _decode(key, value) for key, value in request.query.items()}
        uploads: dict[str, _Upload] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    data = bytes(await part.read(decode=True))
                    content_type = part.headers.get("Content-Type")
                    uploads[part.name] = _Upload(data, part.filename, content_type)
                else:
                    params[part.name] = _decode(part.name, await part.text())
        elif request.content_type == "application/json" and request.can_read_body:
            body = await request.json()
            if isinstance(body, dict):
                params.update(body)
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = _decode(key, value)
        return params, uploads

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, uploads = await self._read(request)
        if request.match_info["token"] != self.token:
            error = ApiError(401, "Unauthorized")
            await self._record(
                Call(method, params, {}, time.monotonic(), 401, None, "Unauthorized")
            )
            return self._json(401, error.payload())
        files = {name: up.data for name, up in uploads.items()}
        names = {name: up.filename for name, up in uploads.items() if up.filename}
        entry = self._methods.get(method.lower())
        if entry is None:
            error = ApiError(404, "Not Found")
            await self._record(
                Call(method, params, files, time.monotonic(), 404, None, error.description)
            )
            return self._json(404, error.payload())
        name, handler = entry
        await self._wait_hold(name)
        ctx = _Ctx()
        error: ApiError
        try:
            self._inject(name, params)
            result = await handler(params, uploads, ctx)
        except ApiError as exc:
            error = exc
        except Exception as exc:  # a stand-in bug: answer JSON 500, keep it for the test
            self.internal_errors.append(exc)
            error = ApiError(500, f"Internal Server Error: stand-in failed: {exc!r}")
        else:
            call = Call(
                name, params, files, time.monotonic(), 200, result, None, ctx.sources, names
            )
            await self._record(call)
            return self._json(200, {"ok": True, "result": result})
        call = Call(
            name,
            params,
            files,
            time.monotonic(),
            error.status,
            None,
            error.description,
            ctx.sources,
            names,
        )
        await self._record(call)
        return self._json(error.status, error.payload())

    async def _handle_file(self, request: web.Request) -> web.Response:
        path = request.match_info["file_path"]
        stored = self._by_path.get(path)
        ok = request.match_info["token"] == self.token and stored is not None
        data = stored.data if stored is not None and ok else None
        status = 200 if data is not None else 404
        call = Call(
            "download",
            {"file_path": path},
            {},
            time.monotonic(),
            status,
            None,
            None if data is not None else "Not Found",
        )
        await self._record(call)
        if data is None:
            return self._json(404, ApiError(404, "Not Found").payload())
        return web.Response(body=data, content_type="application/octet-stream")

    async def _wait_hold(self, method: str) -> None:
        holds = self._holds.get(method)
        if not holds:
            return
        hold = holds[0]
        hold.remaining -= 1
        if hold.remaining <= 0:
            holds.popleft()
        await hold.release.wait()

    def _inject(self, method: str, params: JSONDict) -> None:
        queue = self._failures.get(method)
        if not queue:
            return
        for failure in list(queue):
            if failure.match is None or failure.match(params):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    queue.remove(failure)
                raise ApiError(failure.status, failure.description, failure.parameters)

    # ------------------------------------------------------------------ storage helpers

    def _new_file_id(self, kind: str) -> str:
        prefix = {"photo": "AgAC", "document": "BQAC", "sticker": "CAAC", "voice": "AwAC"}
        return f"{prefix.get(kind, 'BAAC')}AgIAAxkBAA{next(self._ids):08d}"

    def _store_file(
        self,
        kind: str,
        data: bytes,
        file_name: str | None,
        mime_type: str | None,
        *,
        uploaded_by: Literal["bot", "user"],
        size: tuple[int, int] | None = None,
    ) -> StoredFile:
        file_id = self._new_file_id(kind)
        unique = "AQAD" + hashlib.blake2b(data, digest_size=9).hexdigest()
        ext = (file_name or "").rsplit(".", 1)[-1] if file_name and "." in file_name else "bin"
        folder = {"photo": "photos", "sticker": "stickers", "voice": "voice"}.get(kind, kind + "s")
        path = f"{folder}/file_{next(self._ids)}.{ext.lower()}"
        if size is None and kind in ("photo", "sticker"):
            size = _image_size(data)
        if mime_type is None and file_name:
            mime_type = mimetypes.guess_type(file_name, strict=False)[0]
        stored = StoredFile(
            kind,
            file_id,
            unique,
            path,
            data,
            file_name,
            mime_type,
            size[0] if size else None,
            size[1] if size else None,
            uploaded_by,
        )
        self.files[file_id] = stored
        self._by_path[path] = stored
        return stored

    def _store_photo(
        self, data: bytes, *, uploaded_by: Literal["bot", "user"], file_name: str | None = None
    ) -> list[StoredFile]:
        size = _image_size(data)
        if size is None:
            if uploaded_by == "bot":
                raise _bad("IMAGE_PROCESS_FAILED")
            raise ValueError("send_photo needs image bytes PIL can identify (or send_document)")
        width, height = size
        if uploaded_by == "bot" and (width + height > 10_000 or max(size) > 20 * min(size)):
            raise _bad("PHOTO_INVALID_DIMENSIONS")
        ext = file_name.rsplit(".", 1)[-1] if file_name and "." in file_name else "jpg"
        original = self._store_file(
            "photo", data, f"photo.{ext}", None, uploaded_by=uploaded_by, size=size
        )
        sizes: list[StoredFile] = []
        for side in PHOTO_SIDES:
            w, h = _scaled(width, height, side)
            file_id = self._new_file_id("photo")
            path = f"photos/file_{next(self._ids)}.jpg"
            variant = StoredFile(
                "photo",
                file_id,
                f"{original.file_unique_id}-{side}",
                path,
                None,
                None,
                "image/jpeg",
                w,
                h,
                uploaded_by,
                parent=original,
                _size_estimate=max(1, len(data) * w * h // (width * height)),
            )
            self.files[file_id] = variant
            self._by_path[path] = variant
            sizes.append(variant)
        sizes.append(original)
        group = tuple(s.file_id for s in sizes)
        for stored in sizes:
            stored.group = group
        return sizes

    def _new_message_id(self, chat_id: int) -> int:
        message_id = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = message_id
        return message_id

    @staticmethod
    def _scope_key(scope: Any) -> str:
        if not isinstance(scope, Mapping) or not scope:
            scope = {"type": "default"}
        return json.dumps(scope, sort_keys=True)

    # ------------------------------------------------------------------ method helpers

    def _chat(self, params: JSONDict) -> JSONDict:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        chat: JSONDict | None
        if isinstance(raw, str) and raw.startswith("@"):
            chat = next((c for c in self.chats.values() if c.get("username") == raw[1:]), None)
        else:
            chat = self.chats.get(_as_int(raw, "chat_id"))
        if chat is None:
            raise _bad("chat not found")
        if chat["id"] in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _find(self, params: JSONDict, action: str) -> tuple[tuple[int, int], JSONDict]:
        chat = self._chat(params)
        message_id = _as_int(params.get("message_id"), "message_id")
        key = (int(chat["id"]), message_id)
        message = self._messages.get(key)
        if message is None:
            raise _bad(f"message to {action} not found")
        return key, message

    def _find_editable(self, params: JSONDict) -> tuple[tuple[int, int], JSONDict]:
        key, message = self._find(params, "edit")
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise _bad("message can't be edited")
        return key, message

    def _reply_to(self, chat_id: int, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply"))
            if reply.get("chat_id") not in (None, chat_id):
                chat_id = _as_int(reply["chat_id"], "chat_id")
        else:
            message_id = params.get("reply_to_message_id")
            allow_missing = bool(params.get("allow_sending_without_reply"))
        if message_id is None:
            return None
        target = self._messages.get((chat_id, _as_int(message_id, "message_id")))
        if target is None:
            if allow_missing:
                return None
            raise _bad("message to be replied not found")
        return _without_reply(target)

    def _caption(self, params: JSONDict) -> JSONDict:
        caption = params.get("caption")
        if caption in (None, ""):
            return {}
        text = _render(str(caption), params.get("parse_mode"))
        if len(text) > MAX_CAPTION:
            raise _bad("message caption is too long")
        content: JSONDict = {"caption": text}
        if isinstance(params.get("caption_entities"), list):
            content["caption_entities"] = params["caption_entities"]
        return content

    def _text(self, params: JSONDict) -> JSONDict:
        raw = params.get("text")
        text = _render("" if raw is None else str(raw), params.get("parse_mode"))
        if not text.strip():
            raise _bad("message text is empty")
        if len(text) > MAX_TEXT:
            raise _bad("message is too long")
        content: JSONDict = {"text": text}
        if isinstance(params.get("entities"), list):
            content["entities"] = params["entities"]
        return content

    def _media(
        self,
        value: Any,
        uploads: Mapping[str, _Upload],
        kind: str,
        ctx: _Ctx,
        key: str,
        *,
        direct: bool = False,
    ) -> list[StoredFile]:
        """Resolve a file field to stored file(s): a direct upload in the part named ``key``
        (``direct``), an ``attach://name`` upload, or a file_id. Records ``ctx.sources[key]``."""
        upload = uploads.get(key) if direct else None
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = uploads.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad(f"file {value} not found in the request")
        if upload is not None:
            ctx.sources[key] = "upload"
            if kind == "photo":
                return self._store_photo(upload.data, uploaded_by="bot", file_name=upload.filename)
            mime = upload.content_type
            if mime in (None, "application/octet-stream") and upload.filename:
                mime = mimetypes.guess_type(upload.filename, strict=False)[0] or mime
            return [self._store_file(kind, upload.data, upload.filename, mime, uploaded_by="bot")]
        if not isinstance(value, str) or not value:
            raise _bad(f"there is no {key} in the request")
        if value.startswith(("http://", "https://")):
            raise _bad("failed to get HTTP URL content")
        stored = self.files.get(value)
        if stored is None:
            raise _bad("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise _bad(f"can't use file of type {stored.kind.title()} as {kind.title()}")
        ctx.sources[key] = "file_id"
        if kind == "photo":
            return [self.files[file_id] for file_id in stored.group]
        return [stored]

    def _media_content(self, kind: str, stored: list[StoredFile]) -> JSONDict:
        if kind == "photo":
            return {"photo": [s.photo_size() for s in stored]}
        return {kind: _document_json(stored[0])}

    def _send(self, params: JSONDict, content: JSONDict, chat: JSONDict | None = None) -> JSONDict:
        chat = chat or self._chat(params)
        chat_id = int(chat["id"])
        reply = self._reply_to(chat_id, params)
        message_id = self._new_message_id(chat_id)
        message: JSONDict = {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
        }
        if reply is not None:
            message["reply_to_message"] = reply
        message.update(content)
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        key = (chat_id, message_id)
        self._messages[key] = message
        self._bot_sent.setdefault(chat_id, []).append(message_id)
        raw = params.get("text", params.get("caption"))
        entities = params.get("entities", params.get("caption_entities"))
        self._raw_text[key] = (str(raw) if raw is not None else "", entities)
        return message

    # ------------------------------------------------------------------ Bot API methods

    def _handlers(self) -> dict[str, Handler]:
        return {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getChat": self._get_chat,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendVideo": self._send_video,
            "sendAnimation": self._send_video,
            "sendVideoNote": self._send_video,
            "sendSticker": self._send_sticker,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "editMessageMedia": self._edit_message_media,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "getFile": self._get_file,
        }

    async def _true(self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx) -> bool:
        return True

    async def _get_me(self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx) -> JSONDict:
        return self.bot_user

    async def _get_updates(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> list[JSONDict]:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params.get("offset") or 0, "offset")
        limit = min(max(_as_int(params.get("limit") or 100, "limit"), 1), 100)
        timeout = min(max(float(params.get("timeout") or 0), 0.0), MAX_LONG_POLL)
        allowed = params.get("allowed_updates")
        allowed_set = set(allowed) if isinstance(allowed, list) and allowed else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._updates_cond:
            self._poll_generation += 1
            generation = self._poll_generation
            self._updates_cond.notify_all()  # an older parked poll is superseded
            if offset < 0:
                while len(self._updates) > -offset:
                    self._updates.popleft()
            else:
                while self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()
            while True:
                if generation != self._poll_generation:
                    raise ApiError(409, _DEFAULT_DESCRIPTIONS[409])
                batch: list[JSONDict] = []
                for update in list(self._updates):
                    if allowed_set is not None and not allowed_set.intersection(update):
                        self._updates.remove(update)  # never delivered, as on Telegram
                        continue
                    batch.append(update)
                    if len(batch) >= limit:
                        break
                remaining = deadline - loop.time()
                if batch or self._closing or remaining <= 0:
                    return batch
                self._parked += 1
                self._updates_cond.notify_all()  # for wait_polling()
                try:
                    async with asyncio.timeout(remaining):
                        await self._updates_cond.wait()
                except TimeoutError:
                    pass
                finally:
                    self._parked -= 1

    async def _set_webhook(self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx) -> bool:
        self.webhook = dict(params) if params.get("url") else None
        return True

    async def _delete_webhook(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            async with self._updates_cond:
                self._updates.clear()
        return True

    async def _get_webhook_info(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict:
        return {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _set_my_commands(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("commands must be a JSON array of at most 100 BotCommand")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND.match(
                str(command.get("command", ""))
            ):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self.commands[key] = [dict(c) for c in commands]
        return True

    async def _get_my_commands(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> list[JSONDict]:
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        return self.commands.get(key, [])

    async def _delete_my_commands(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> bool:
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self.commands.pop(key, None)
        return True

    async def _get_chat(self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx) -> JSONDict:
        chat = self._chat(params)
        gifts = ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription")
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {name: False for name in (*gifts, "gifts_from_channels")},
        }

    async def _send_message(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict:
        chat = self._chat(params)
        return self._send(params, self._text(params), chat)

    async def _send_photo(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict:
        chat = self._chat(params)
        caption = self._caption(params)
        sizes = self._media(params.get("photo"), uploads, "photo", ctx, "photo", direct=True)
        return self._send(params, {**self._media_content("photo", sizes), **caption}, chat)

    async def _send_document(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict:
        chat = self._chat(params)
        caption = self._caption(params)
        stored = self._media(
            params.get("document"), uploads, "document", ctx, "document", direct=True
        )
        return self._send(params, {**self._media_content("document", stored), **caption}, chat)

    async def _send_video(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict:
        """sendVideo, sendAnimation, sendVideoNote: the kind comes from the field present."""
        kind = next(k for k in ("video_note", "animation", "video") if k in params or k in uploads)
        chat = self._chat(params)
        caption = self._caption(params) if kind != "video_note" else {}
        (stored,) = self._media(params.get(kind), uploads, kind, ctx, kind, direct=True)
        return self._send(params, {kind: _video_json(stored, kind, params), **caption}, chat)

    async def _send_sticker(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict:
        """sendSticker: a file_id or an uploaded .WEBP/.TGS/.WEBM file. An uploaded WebM is
        held to Telegram's video sticker requirements (see `_video_sticker_size`)."""
        chat = self._chat(params)
        (stored,) = self._media(
            params.get("sticker"), uploads, "sticker", ctx, "sticker", direct=True
        )
        name = (stored.file_name or "").lower()
        is_video = name.endswith(".webm") or stored.mime_type == "video/webm"
        width, height = _video_sticker_size(stored.data or b"") if is_video else (512, 512)
        sticker: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": width,
            "height": height,
            "is_animated": name.endswith(".tgs"),
            "is_video": is_video,
            "file_size": stored.file_size,
        }
        if params.get("emoji"):
            sticker["emoji"] = params["emoji"]
        return self._send(params, {"sticker": sticker}, chat)

    async def _send_media_group(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> list[JSONDict]:
        chat = self._chat(params)
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _bad("media must include 2-10 items")
        self._reply_to(int(chat["id"]), params)  # fail before storing anything
        group_id = str(13_000_000_000_000_000 + next(self._ids))
        resolved: list[JSONDict] = []
        for index, item in enumerate(media):
            kind = item.get("type") if isinstance(item, dict) else None
            if kind not in ("photo", "document"):
                raise _bad(f"unsupported media type {kind!r} in the stand-in")
            stored = self._media(item.get("media"), uploads, kind, ctx, f"media.{index}")
            content = {**self._media_content(kind, stored), "media_group_id": group_id}
            content.update(self._caption(item))
            resolved.append(content)
        return [self._send(params, content, chat) for content in resolved]

    async def _send_chat_action(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> bool:
        self._chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    def _not_modified(self) -> ApiError:
        return _bad(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )

    def _edited(
        self, key: tuple[int, int], message: JSONDict, params: JSONDict, changes: JSONDict
    ) -> JSONDict:
        edited = {**message, **changes, "edit_date": int(time.time())}
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            edited["reply_markup"] = markup
        else:
            edited.pop("reply_markup", None)
        self._messages[key] = edited
        return edited

    async def _edit_message_text(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict | bool:
        if params.get("inline_message_id"):
            self._text(params)
            return True
        key, message = self._find_editable(params)
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        content = self._text(params)
        raw = (str(params.get("text")), params.get("entities"))
        if raw == self._raw_text.get(key) and params.get("reply_markup") == message.get(
            "reply_markup"
        ):
            raise self._not_modified()
        self._raw_text[key] = raw
        message = {k: v for k, v in message.items() if k != "entities"}
        return self._edited(key, message, params, content)

    async def _edit_message_caption(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict | bool:
        if params.get("inline_message_id"):
            self._caption(params)
            return True
        key, message = self._find_editable(params)
        if not any(k in message for k in _MEDIA_KEYS):
            raise _bad("there is no caption in the message to edit")
        content = self._caption(params)
        raw = (str(params.get("caption") or ""), params.get("caption_entities"))
        if raw == self._raw_text.get(key) and params.get("reply_markup") == message.get(
            "reply_markup"
        ):
            raise self._not_modified()
        self._raw_text[key] = raw
        base = {k: v for k, v in message.items() if k not in ("caption", "caption_entities")}
        return self._edited(key, base, params, content)

    async def _edit_message_reply_markup(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict | bool:
        if params.get("inline_message_id"):
            return True
        key, message = self._find_editable(params)
        new = params.get("reply_markup")
        new = new if isinstance(new, dict) and new.get("inline_keyboard") else None
        if new == message.get("reply_markup"):
            raise self._not_modified()
        return self._edited(key, message, params, {})

    async def _edit_message_media(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> JSONDict | bool:
        media = params.get("media")
        if not isinstance(media, dict) or media.get("type") not in ("photo", "document"):
            raise _bad("media must be an InputMediaPhoto or InputMediaDocument here")
        kind = str(media["type"])
        if params.get("inline_message_id"):
            self._media(media.get("media"), uploads, kind, ctx, "media")
            return True
        key, message = self._find_editable(params)
        if not any(k in message for k in _MEDIA_KEYS):
            raise _bad("there is no media in the message to edit")
        stored = self._media(media.get("media"), uploads, kind, ctx, "media")
        content = {**self._media_content(kind, stored), **self._caption(media)}
        base = {
            k: v
            for k, v in message.items()
            if k not in (*_MEDIA_KEYS, "caption", "caption_entities")
        }
        raw = media.get("caption")
        self._raw_text[key] = ("" if raw is None else str(raw), media.get("caption_entities"))
        return self._edited(key, base, params, content)

    async def _delete_message(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> bool:
        key, _ = self._find(params, "delete")
        self._deleted[key] = self._messages.pop(key)
        return True

    async def _delete_messages(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> bool:
        chat = self._chat(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise _bad("message_ids must be a JSON array of 1-100 ids")
        for message_id in ids:
            key = (int(chat["id"]), _as_int(message_id, "message_ids"))
            if key in self._messages:
                self._deleted[key] = self._messages.pop(key)
        return True

    async def _answer_callback_query(
        self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx
    ) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callbacks or query_id in self.callback_answers:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self.callback_answers[query_id] = dict(params)
        return True

    async def _get_file(self, params: JSONDict, uploads: dict[str, _Upload], ctx: _Ctx) -> JSONDict:
        stored = self.files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        if stored.data is None and stored.parent is not None and stored.parent.data is not None:
            size = (stored.width or 1, stored.height or 1)
            stored.data = await asyncio.to_thread(_downscale, stored.parent.data, size)
        if stored.file_size > MAX_DOWNLOAD:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }


# --------------------------------------------------------------------------- shape checks


def _check_user(user: Any, where: str) -> None:
    if not isinstance(user, dict):
        raise InvalidUpdate(f"{where} must be a User object")
    if not isinstance(user.get("id"), int) or not isinstance(user.get("is_bot"), bool):
        raise InvalidUpdate(f"{where} needs an int id and a bool is_bot")
    if not isinstance(user.get("first_name"), str) or not user["first_name"]:
        raise InvalidUpdate(f"{where} needs a first_name")


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise InvalidUpdate(f"{where} must be a Message object")
    for key in ("message_id", "date"):
        value = message.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidUpdate(f"{where}.{key} must be an int")
    chat = message.get("chat")
    if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
        raise InvalidUpdate(f"{where}.chat needs an int id")
    if chat.get("type") not in _CHAT_TYPES:
        raise InvalidUpdate(f"{where}.chat.type must be one of {sorted(_CHAT_TYPES)}")
    if "from" in message:
        _check_user(message["from"], f"{where}.from")
    for size in message.get("photo") or []:
        missing = {"file_id", "file_unique_id", "width", "height"} - set(size)
        if missing:
            raise InvalidUpdate(f"{where}.photo entry lacks {sorted(missing)}")
    if "reply_to_message" in message:
        _check_message(message["reply_to_message"], f"{where}.reply_to_message")


def _without_reply(message: Mapping[str, Any]) -> JSONDict:
    """Telegram nests only one level of reply_to_message."""
    return {k: v for k, v in message.items() if k != "reply_to_message"}


def _video_sticker_size(data: bytes) -> tuple[int, int]:
    """Width and height of a WebM that meets the video sticker requirements
    (https://core.telegram.org/stickers#video-requirements): VP9, no audio, one side exactly
    512 px and the other at most 512, at most 3 s and 30 fps, at most 256 KB. A 400 otherwise."""
    import av

    if len(data) > 256 * 1024:
        raise _bad("STICKER_VIDEO_BIG")
    try:
        with av.open(io.BytesIO(data)) as container:
            if "webm" not in container.format.name or container.streams.audio:
                raise _bad("STICKER_VIDEO_INVALID")
            video = container.streams.video[0]
            ctx = video.codec_context
            width, height, codec = ctx.width, ctx.height, ctx.name
            rate = float(video.average_rate or 0)
            seconds = container.duration / av.time_base if container.duration else 0.0
    except ApiError:
        raise
    except Exception:
        raise _bad("STICKER_VIDEO_INVALID") from None
    if codec != "vp9" or max(width, height) != 512 or rate > 30.01:
        raise _bad("STICKER_VIDEO_INVALID")
    if seconds > 3.0 + 1e-3:
        raise _bad("STICKER_VIDEO_LONG")
    return width, height


def _video_json(stored: StoredFile, kind: str, params: Mapping[str, Any]) -> JSONDict:
    """A Video, Animation or VideoNote object: size and duration as sent, else read from the
    file with PyAV (as Telegram does for uploads)."""
    width, height, duration = 0, 0, 0
    try:
        import av

        with av.open(io.BytesIO(stored.data or b"")) as container:
            video = container.streams.video[0]
            width, height = video.codec_context.width, video.codec_context.height
            duration = round(container.duration / av.time_base) if container.duration else 0
    except Exception:  # not a video Telegram could read: it reports zeros too
        pass
    width = int(params.get("width") or width)
    height = int(params.get("height") or height)
    duration = int(params.get("duration") or duration)
    base: JSONDict = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "duration": duration,
        "file_size": stored.file_size,
    }
    if kind == "video_note":
        return {**base, "length": int(params.get("length") or min(width, height))}
    found = {**base, "width": width, "height": height}
    if stored.mime_type:
        found["mime_type"] = stored.mime_type
    if stored.file_name:
        found["file_name"] = stored.file_name
    return found


def _document_json(stored: StoredFile) -> JSONDict:
    document: JSONDict = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.file_size,
    }
    if stored.file_name:
        document["file_name"] = stored.file_name
    if stored.mime_type:
        document["mime_type"] = stored.mime_type
    return document


# --------------------------------------------------------------------------- PTB glue


def application_builder(api: TelegramStandIn) -> ApplicationBuilder:
    """An ``ApplicationBuilder`` with token, base_url and base_file_url set to the stand-in."""
    return (
        ApplicationBuilder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
    )


def make_bot(api: TelegramStandIn, **kwargs: Any) -> Bot:
    """A plain ``telegram.Bot`` talking to the stand-in (use as ``async with make_bot(api)``)."""
    return Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url, **kwargs)


@asynccontextmanager
async def running_application(
    app: Application,
    api: TelegramStandIn,
    *,
    poll_timeout: float = 10.0,
    run_post_init: bool = True,
) -> AsyncIterator[Application]:
    """Run ``app`` the way ``run_polling`` would, without owning the loop or signals.

    Order: initialize, ``post_init`` (run_polling calls it; here we must), start polling,
    start; at exit release the stand-in's long polls, stop the updater, stop the app,
    ``post_stop``, shutdown, ``post_shutdown``."""
    updater = app.updater
    if updater is None:
        raise ValueError("the application was built without an updater")
    api.resume_long_polls()
    async with app:
        if run_post_init and app.post_init is not None:
            await app.post_init(app)
        await updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=poll_timeout))
        await app.start()
        try:
            yield app
        finally:
            await api.release_long_polls()
            await updater.stop()
            await app.stop()
            if app.post_stop is not None:
                await app.post_stop(app)
    if app.post_shutdown is not None:
        await app.post_shutdown(app)
