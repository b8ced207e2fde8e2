"""callback_data for inline buttons: compact, typed, and at most 64 bytes (Telegram's limit).

Buttons under a result carry everything needed to render the photo again, so pressing one
never needs the photo itself, only its cached copy (`ConversionRequest(input_key=...)`):

    r10:shinkai:<43 chars>   render as a photo: faces on (1), side by side off (0)
    d10:hayao:<43 chars>     the same as a full-resolution PNG file

The 32-byte input key (64 hex digits) travels as unpadded base64url (43 characters). A style
whose name is not short and plain travels as `#` + 12 hex digits of its name's SHA-256 and is
resolved against the installed styles when the button is pressed.

Settings keyboards carry the id of the person they were made for, so in a group nobody else
can change that person's preferences or delete their data:

    s:style:<user id>:<style token>     s:lang:<user id>:<code>     s:forget:<user id>:yes|no
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

MAX_BYTES = 64
_PLAIN_STYLE = re.compile(r"[a-z0-9_-]{1,16}")
_HASHED_STYLE = re.compile(r"#[0-9a-f]{12}")
_RESULT = re.compile(
    r"(?P<op>[rd])(?P<faces>[01])(?P<sbs>[01]):(?P<style>[^:]{1,16}):(?P<key>[A-Za-z0-9_-]{43})"
)
_SETTING = re.compile(r"s:(?P<what>style|lang|forget):(?P<owner>\d{1,20}):(?P<value>[^:]{1,20})")

RESULT_PATTERN = r"^[rd][01][01]:"
SETTING_PATTERN = r"^s:"

Op = Literal["photo", "file"]
Setting = Literal["style", "lang", "forget"]


def style_token(style: str) -> str:
    """The style's name when it is short and plain, else a short hash of it."""
    if _PLAIN_STYLE.fullmatch(style):
        return style
    return "#" + hashlib.sha256(style.encode()).hexdigest()[:12]


def resolve_style(token: str, installed: Iterable[str]) -> str | None:
    """The installed style a token names (None when it names none of them)."""
    for name in installed:
        if style_token(name) == token:
            return name
    return None


def pack_key(input_key: str) -> str:
    """64 hex digits -> 43 base64url characters; ValueError for anything else."""
    if len(input_key) != 64:
        raise ValueError("an input key is 64 hex digits")
    raw = bytes.fromhex(input_key)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack_key(packed: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(packed + "=")
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a packed input key") from exc
    if len(raw) != 32:
        raise ValueError("not a packed input key")
    return raw.hex()


@dataclass(frozen=True)
class ResultAction:
    """Render `input_key` again with these options (a photo, or the full-resolution file)."""

    op: Op
    input_key: str
    style_token: str
    faces: bool
    side_by_side: bool

    @classmethod
    def make(
        cls, op: Op, input_key: str, style: str, *, faces: bool, side_by_side: bool
    ) -> ResultAction:
        return cls(op, input_key, style_token(style), faces, side_by_side)

    def encode(self) -> str:
        data = (
            f"{'r' if self.op == 'photo' else 'd'}{int(self.faces)}{int(self.side_by_side)}:"
            f"{self.style_token}:{pack_key(self.input_key)}"
        )
        _check_length(data)
        return data


@dataclass(frozen=True)
class SettingAction:
    """A choice on a settings keyboard, made for the person `owner` (Telegram user id)."""

    what: Setting
    owner: int
    value: str

    def encode(self) -> str:
        data = f"s:{self.what}:{self.owner}:{self.value}"
        _check_length(data)
        return data


def style_setting(owner: int, style: str) -> SettingAction:
    return SettingAction("style", owner, style_token(style))


def parse(data: str | None) -> ResultAction | SettingAction | None:
    """The action a button carries; None for anything this bot did not make (or an old one)."""
    if not data:
        return None
    if match := _RESULT.fullmatch(data):
        style = match["style"]
        if not (_PLAIN_STYLE.fullmatch(style) or _HASHED_STYLE.fullmatch(style)):
            return None
        try:
            key = unpack_key(match["key"])
        except ValueError:
            return None
        op: Op = "photo" if match["op"] == "r" else "file"
        return ResultAction(op, key, style, match["faces"] == "1", match["sbs"] == "1")
    if match := _SETTING.fullmatch(data):
        what = match["what"]
        setting: Setting = "style" if what == "style" else "lang" if what == "lang" else "forget"
        return SettingAction(setting, int(match["owner"]), match["value"])
    return None


def _check_length(data: str) -> None:
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"callback_data over {MAX_BYTES} bytes: {data!r}")
