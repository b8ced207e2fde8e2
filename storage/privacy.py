"""Pseudonymous ids: HMAC-SHA256 under a random per-install key kept in a file *outside* the
database (mode 0600, by default `<db stem>.key` beside the database file).

Raw platform ids never reach the database. Ids are small integers, so a plain SHA-256 would be
trivially reversible; with the key elsewhere, a copy of the database alone can neither link a
hash to an account nor confirm a guessed id. The database keeps only `id_key_check`, an HMAC
of a constant under the key, so a database opened with a lost or a foreign key file is refused
instead of silently starting a second set of hashes (which would orphan every record and make
/forget miss them).

Installs from before kept the key in `meta.install_secret`: the first open copies it into the
key file, then erases it from the database (secure_delete, then a WAL checkpoint), so their
history keeps its hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from storage.clock import now_ms
from storage.connection import SqlConnection
from storage.errors import IdKeyError
from storage.sql import Sql

log = logging.getLogger("animebot.storage")

LEGACY_SECRET_KEY = "install_secret"  # where installs before the key file kept the key
CHECK_KEY = "id_key_check"
CREATED_KEY = "installed_at"
KEY_BYTES = 32
_CHECK_MESSAGE = b"animebot id key check v1"


def default_key_file(db_path: Path) -> Path:
    """`<dir>/<stem>.key`: beside the database, distinct per database file."""
    return db_path.with_name(f"{db_path.stem}.key")


def key_check(key: bytes) -> str:
    """What the database stores to recognise its key (reveals nothing about the key)."""
    return hmac.new(key, _CHECK_MESSAGE, hashlib.sha256).hexdigest()


def read_key_file(path: Path) -> bytes | None:
    """The key in `path`, or None when there is no such file."""
    try:
        text = path.read_text(encoding="ascii").strip()
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IdKeyError(f"cannot read the id key file {path}: {exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise IdKeyError(f"{path} is not an animebot id key file ({KEY_BYTES * 2} hex digits)")
    if mode & 0o077:
        log.warning("the id key file %s is readable by others (mode %o): chmod 600 it", path, mode)
    return key


def create_key_file(path: Path, key: bytes) -> bytes:
    """Write `key` to `path` (mode 0600) unless the file exists; return the key the file holds.

    The file appears complete or not at all (written beside it, then hard-linked into place,
    which never replaces an existing file), so two processes starting at once agree on one key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), 0o600)  # whatever the umask
            handle.write(key.hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process was first: use its key
        except OSError:  # no hard links on this file system: exclusive create instead
            with contextlib.suppress(FileExistsError):
                _write_exclusive(path, key)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    found = read_key_file(path)
    if found is None:
        raise IdKeyError(f"the id key file {path} vanished while it was being created")
    return found


def _write_exclusive(path: Path, key: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


async def load_key(sql: Sql, key_file: Path) -> bytes:
    """The install's id key: from `key_file`, created there on first open, or moved there from
    the database of an older install. Raises IdKeyError for a missing or foreign key file."""
    async with sql.snapshot() as tx:
        legacy = await tx.scalar("SELECT value FROM meta WHERE key = ?", (LEGACY_SECRET_KEY,))
        check = await tx.scalar("SELECT value FROM meta WHERE key = ?", (CHECK_KEY,))
    on_disk = await asyncio.to_thread(read_key_file, key_file)
    if legacy is not None:
        key = bytes.fromhex(str(legacy))
        if on_disk is None:
            on_disk = await asyncio.to_thread(create_key_file, key_file, key)
        if on_disk != key:
            raise IdKeyError(
                f"{key_file} holds another id key than the one database {sql.name} was made "
                f"with; move {key_file} away and start again, so the database's own key can be "
                "moved into it"
            )
        await _erase_legacy_key(sql, key)
        log.info("the id key was moved out of the database into %s", key_file)
        return key
    if on_disk is None:
        if check is not None:
            raise IdKeyError(
                f"the id key file {key_file} is missing, but database {sql.name} was made with "
                "one: restore the file (or set ANIMEBOT_ID_KEY_FILE to where it is). Without it "
                "no stored record can be matched to its person again"
            )
        on_disk = await asyncio.to_thread(create_key_file, key_file, secrets.token_bytes(KEY_BYTES))
    if check is None:
        async with sql.transaction() as tx:  # DO NOTHING: two first opens at once agree
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (CHECK_KEY, key_check(on_disk)),
            )
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (CREATED_KEY, str(now_ms())),
            )
            check = await tx.scalar("SELECT value FROM meta WHERE key = ?", (CHECK_KEY,))
    if not hmac.compare_digest(str(check), key_check(on_disk)):
        raise IdKeyError(
            f"{key_file} is not the id key database {sql.name} was made with: point "
            "ANIMEBOT_ID_KEY_FILE at the right file"
        )
    return on_disk


async def _erase_legacy_key(sql: Sql, key: bytes) -> None:
    """Delete the key from the database so that no copy of the file keeps it: the freed bytes
    are zeroed (the connection runs with secure_delete), then a checkpoint leaves no old page
    in the WAL either."""
    async with sql.transaction() as tx:
        await tx.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (CHECK_KEY, key_check(key)),
        )
        await tx.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (CREATED_KEY, str(now_ms())),
        )
        await tx.execute("DELETE FROM meta WHERE key = ?", (LEGACY_SECRET_KEY,))
    await checkpoint(sql)


async def checkpoint(sql: Sql) -> None:
    """Copy the WAL into the database and empty it, so deleted rows survive in neither file.
    Best effort: a reader in another process may hold the WAL; SQLite checkpoints it later.
    SQLite only: PostgreSQL reclaims deleted rows itself (autovacuum)."""
    if isinstance(sql, SqlConnection):
        await sql.execute_outside_transaction("PRAGMA wal_checkpoint(TRUNCATE)")


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A separate key for another use (signing cookies, …), independent of the id hashes."""
    return hmac.new(secret, f"animebot-derived-key\x00{purpose}".encode(), hashlib.sha256).digest()


def hash_id(secret: bytes, platform: str, raw_id: str | int) -> str:
    """Hex HMAC-SHA256 of platform and id: stable per install, different across installs
    and across platforms (the same number on Telegram and Discord is two people)."""
    if not platform or "\x00" in platform:
        raise ValueError("platform must be a non-empty string without NUL")
    message = f"{platform}\x00{raw_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
