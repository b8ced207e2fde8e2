"""Per-user preferences (default style, face handling, language, side-by-side output)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from storage.clock import now_ms
from storage.sql import Row, Sql


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET


@dataclass(frozen=True)
class UserPrefs:
    """A user's choices; None means "not chosen, use the default"."""

    style: str | None = None
    faces: bool | None = None
    language: str | None = None
    side_by_side: bool | None = None


def _bool(value: object) -> bool | None:
    return None if value is None else bool(value)


def _prefs(row: Row | None) -> UserPrefs:
    if row is None:
        return UserPrefs()
    return UserPrefs(
        style=None if row["style"] is None else str(row["style"]),
        faces=_bool(row["faces"]),
        language=None if row["language"] is None else str(row["language"]),
        side_by_side=_bool(row["side_by_side"]),
    )


class PrefsRepo:
    """Reads and upserts `prefs` rows, keyed by (platform, user_hash)."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def get(self, platform: str, user_hash: str) -> UserPrefs:
        """The stored preferences, all None for a user who never chose anything."""
        row = await self._sql.fetchone(
            "SELECT style, faces, language, side_by_side FROM prefs "
            "WHERE platform = ? AND user_hash = ?",
            (platform, user_hash),
        )
        return _prefs(row)

    async def update(
        self,
        platform: str,
        user_hash: str,
        *,
        style: str | _Unset | None = UNSET,
        faces: bool | _Unset | None = UNSET,
        language: str | _Unset | None = UNSET,
        side_by_side: bool | _Unset | None = UNSET,
    ) -> UserPrefs:
        """Change only the given fields (None clears one) and return the result (UPSERT)."""
        given: dict[str, str | int | None] = {}
        if not isinstance(style, _Unset):
            given["style"] = style
        if not isinstance(faces, _Unset):
            given["faces"] = None if faces is None else int(faces)
        if not isinstance(language, _Unset):
            given["language"] = language
        if not isinstance(side_by_side, _Unset):
            given["side_by_side"] = None if side_by_side is None else int(side_by_side)
        # Column names come from the fixed keyword list above, never from the caller.
        columns = ["platform", "user_hash", *given, "updated_at"]
        updates = [f"{c} = excluded.{c}" for c in [*given, "updated_at"]]
        params: dict[str, str | int | None] = {
            "platform": platform,
            "user_hash": user_hash,
            **given,
            "updated_at": now_ms(),
        }
        async with self._sql.transaction() as tx:
            row = await tx.fetchone(
                f"INSERT INTO prefs ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)}) "
                f"ON CONFLICT(platform, user_hash) DO UPDATE SET {', '.join(updates)} "
                "RETURNING style, faces, language, side_by_side",
                params,
            )
        return _prefs(row)
