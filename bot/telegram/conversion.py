"""Telegram requests as jobs: what a message or a button asks, for the job runner.

Every job is stored (`JobRunner.accept`) before its update is confirmed to Telegram, and
deleted once the person has their answer; a shutdown that turns it away keeps it, with the
person told, in one message, that the photo will be done when the bot is back (see README,
"Nothing accepted is lost"). The runner does the rest (service/lifecycle/); the outlet
(bot/telegram/outlet.py) renders the answers.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Protocol

from bot.telegram.delivery import PLATFORM
from bot.telegram.inputs import TELEGRAM_DOWNLOAD_LIMIT, Media
from service.lifecycle import Job

log = logging.getLogger("animebot.telegram")


class TelegramFile(Protocol):
    """A file Telegram holds for us (a photo or a clip): refetchable by its id after a crash."""

    @property
    def kind(self) -> str: ...
    @property
    def file_id(self) -> str: ...
    @property
    def file_size(self) -> int | None: ...


def file_job(
    request_id: str,
    *,
    chat_id: int,
    user_id: int,
    lang: str,
    media: TelegramFile,
    reply_to: int | None,
    options: dict[str, Any],
) -> Job:
    """A file sent to the bot (or named by `/anime` in reply to it); `source["media"]` says
    what kind it was, so the answer can be of the same kind."""
    return Job(
        platform=PLATFORM,
        user_id=str(user_id),
        chat_id=str(chat_id),
        lang=lang,
        request_id=request_id,
        source={
            "kind": "telegram_file",
            "media": media.kind,
            "file_id": media.file_id,
            "size": media.file_size,
            "limit": TELEGRAM_DOWNLOAD_LIMIT,  # getFile serves no larger files
        },
        options=options,
        outlet=_outlet(chat_id, reply_to),
    )


def photo_job(
    request_id: str,
    *,
    chat_id: int,
    user_id: int,
    lang: str,
    media: Media,
    reply_to: int | None,
    style: str | None = None,
) -> Job:
    """A picture sent to the bot (or named by `/anime` in reply to it)."""
    return file_job(
        request_id,
        chat_id=chat_id,
        user_id=user_id,
        lang=lang,
        media=media,
        reply_to=reply_to,
        options={"style": style, "fmt": "jpeg"},
    )


def button_job(
    request_id: str,
    *,
    chat_id: int,
    user_id: int,
    lang: str,
    input_key: str,
    reply_to: int | None,
    style: str,
    faces: bool | None,
    side_by_side: bool,
    as_file: bool,
    press: tuple[Any, ...] | None = None,
) -> Job:
    """A result's button: the cached photo again, another style or the full-size file."""
    return Job(
        platform=PLATFORM,
        user_id=str(user_id),
        chat_id=str(chat_id),
        lang=lang,
        request_id=request_id,
        source={"kind": "cached", "input_key": input_key},
        options={
            "style": style,
            "faces": faces,
            "side_by_side": side_by_side,
            "fmt": "png" if as_file else "jpeg",  # the full-resolution PNG as a document
        },
        outlet={**_outlet(chat_id, reply_to), "as_file": as_file, "press": press},
    )


def _outlet(chat_id: int, reply_to: int | None) -> dict[str, Any]:
    return {"kind": PLATFORM, "chat_id": chat_id, "reply_to": reply_to, "status_message_id": None}


def upgrade(job: Job) -> Job:
    """A job row stored before the job lifecycle (same meaning, older field names): its
    source was `{"kind": "photo", "file_id", "file_size"}` or `{"input_key"}`, `as_file` an
    option, and the chat only the row's own column."""
    source, options = dict(job.source), dict(job.options)
    if "file_id" in source and source.get("kind") != "telegram_file":
        source = {
            "kind": "telegram_file",
            "media": source.get("kind"),
            "file_id": source["file_id"],
            "size": source.get("file_size"),
            "limit": TELEGRAM_DOWNLOAD_LIMIT,
        }
    elif "input_key" in source and source.get("kind") != "cached":
        source = {"kind": "cached", "input_key": source["input_key"]}
    as_file = bool(job.outlet.get("as_file", options.pop("as_file", False)))
    options.setdefault("fmt", "png" if as_file else "jpeg")
    outlet = {
        **job.outlet,
        "kind": PLATFORM,
        "chat_id": job.outlet.get("chat_id") or job.chat_id or job.user_id,
        "as_file": as_file,
    }
    return replace(job, source=source, options=options, outlet=outlet)
