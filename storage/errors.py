"""Typed storage errors, so callers can tell a refused database from a programming error."""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised on purpose by `storage`."""


class SchemaTooNewError(StorageError):
    """The database was written by a newer animebot; opening it could corrupt it."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        super().__init__(
            f"database {path} has schema version {found}, but this animebot only knows "
            f"versions up to {supported}; upgrade animebot (or restore a backup) instead "
            f"of opening it with an older release"
        )
        self.found = found
        self.supported = supported


class IdKeyError(StorageError):
    """The key file that hashes ids is missing, unreadable or belongs to another database."""


class DatabaseUnavailable(StorageError):
    """The database server cannot be reached or refused the connection (the message names it
    without its password)."""
