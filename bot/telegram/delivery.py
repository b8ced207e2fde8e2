"""Sending to Telegram reliably.

- 429 Too Many Requests: PTB's `AIORateLimiter` (set on the Application) waits `retry_after`
  and retries; nothing to do here.
- 5xx and network errors: retried here with exponential backoff and jitter, a few attempts.
- 403 Forbidden ("bot was blocked by the user", kicked from a group, deactivated user): never
  retried; raised as `Undeliverable` (with the kind the job runner records on the request's
  usage row) so the job stops talking to that chat.
- 400 Bad Request: a bug or a stale reference; not retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from telegram import Bot, InlineKeyboardMarkup, InputMediaPhoto, Message, ReplyParameters
from telegram.error import BadRequest, Forbidden, NetworkError

from service.convert import ConversionReply, ConversionService, new_request_id

log = logging.getLogger("animebot.telegram")

T = TypeVar("T")

PLATFORM = "telegram"
# sendPhoto limits (https://core.telegram.org/bots/api#sendphoto): beyond them, send a file.
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDES_SUM = 10_000
PHOTO_MAX_RATIO = 20


class Undeliverable(Exception):
    """The chat refuses messages from the bot (403); `kind`: "delivery_blocked" (the person
    blocked the bot) or "delivery_forbidden" (kicked from a group, deactivated...)."""

    def __init__(self, detail: str, kind: str = "delivery_forbidden") -> None:
        super().__init__(detail)
        self.kind = kind


def refusal_kind(exc: Forbidden) -> str:
    return "delivery_blocked" if "blocked" in str(exc).lower() else "delivery_forbidden"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, for 5xx and network errors
    base_s: float = 0.5  # first backoff; doubles each time
    max_s: float = 8.0

    def delay(self, attempt: int) -> float:
        wait = min(self.max_s, self.base_s * 2.0**attempt)
        return wait * (0.75 + random.random() / 2)  # jitter: retries do not arrive together


def is_retryable(exc: BaseException) -> bool:
    """5xx answers and network trouble (PTB: NetworkError, TimedOut); not 400s."""
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


def is_not_modified(exc: BaseException) -> bool:
    return isinstance(exc, BadRequest) and "not modified" in str(exc).lower()


def fits_as_photo(width: int, height: int, size: int) -> bool:
    if min(width, height) <= 0:
        return size <= PHOTO_MAX_BYTES
    return (
        size <= PHOTO_MAX_BYTES
        and width + height <= PHOTO_MAX_SIDES_SUM
        and max(width, height) <= PHOTO_MAX_RATIO * min(width, height)
    )


@dataclass(frozen=True)
class Target:
    """Who a reply goes to, and for the records, on whose behalf."""

    chat_id: int
    user_id: int
    reply_to: int | None = None
    request_id: str = field(default_factory=new_request_id)  # shown to people, in the logs

    @property
    def reply_parameters(self) -> ReplyParameters | None:
        if self.reply_to is None:
            return None
        return ReplyParameters(self.reply_to, allow_sending_without_reply=True)


class Delivery:
    def __init__(self, service: ConversionService, policy: RetryPolicy | None = None) -> None:
        self.service = service
        self.policy = policy or RetryPolicy()

    async def call(self, target: Target, send: Callable[[], Awaitable[T]]) -> T:
        """Run `send` with retries; Forbidden is raised as Undeliverable."""
        attempt = 0
        while True:
            try:
                return await send()
            except Forbidden as exc:
                kind = refusal_kind(exc)
                log.info("request %s: chat refuses messages (%s)", target.request_id, kind)
                raise Undeliverable(str(exc), kind) from exc
            except Exception as exc:
                attempt += 1
                if not is_retryable(exc) or attempt >= self.policy.attempts:
                    raise
                wait = self.policy.delay(attempt - 1)
                log.info(
                    "request %s: Telegram send failed (%s), retry %d in %.1f s",
                    target.request_id,
                    type(exc).__name__,
                    attempt,
                    wait,
                )
                await asyncio.sleep(wait)

    async def text(
        self, bot: Bot, target: Target, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> Message:
        return await self.call(
            target,
            lambda: bot.send_message(
                target.chat_id,
                text,
                reply_parameters=target.reply_parameters,
                reply_markup=markup,
            ),
        )

    async def album(
        self, bot: Bot, target: Target, photos: list[tuple[str | bytes, str]]
    ) -> tuple[Message, ...]:
        """Photos (file_id or bytes, caption) as one album: 2 to 10 items, Telegram's limits."""
        media = [InputMediaPhoto(photo, caption=caption) for photo, caption in photos]
        return await self.call(
            target,
            lambda: bot.send_media_group(
                target.chat_id, media, reply_parameters=target.reply_parameters
            ),
        )

    async def result(
        self,
        bot: Bot,
        target: Target,
        reply: ConversionReply,
        *,
        caption: str | None,
        markup: InlineKeyboardMarkup | None,
        as_file: bool,
    ) -> Message:
        """Send a conversion result: by the file_id remembered for it when there is one (no
        upload), else upload it and remember the new file_id for next time."""
        as_file = as_file or not fits_as_photo(reply.width, reply.height, len(reply.data))
        name = f"anime-{reply.style}.{reply.ext}"

        async def send(media: str | bytes) -> Message:
            if as_file:
                return await bot.send_document(
                    target.chat_id,
                    media,
                    filename=name,
                    caption=caption,
                    reply_parameters=target.reply_parameters,
                    reply_markup=markup,
                )
            return await bot.send_photo(
                target.chat_id,
                media,
                filename=name,
                caption=caption,
                reply_parameters=target.reply_parameters,
                reply_markup=markup,
            )

        if reply.handle:
            try:
                return await self.call(target, lambda: send(reply.handle or ""))
            except BadRequest as exc:  # a file_id of another bot token, or of another kind
                log.info("request %s: cached file_id refused (%s)", target.request_id, exc)
        message = await self.call(target, lambda: send(reply.data))
        handle = _file_id(message, as_file)
        if handle:
            try:
                await self.service.remember_handle(reply.result_key, PLATFORM, handle)
            except Exception:
                log.exception("request %s: could not remember the file_id", target.request_id)
        return message


def _file_id(message: Message, as_file: bool) -> str | None:
    if as_file:
        return message.document.file_id if message.document else None
    return message.photo[-1].file_id if message.photo else None
