"""The key that hashes ids lives outside the database (issue 15, item 10): a copy of the
database alone cannot confirm a known id; older installs move their key out without losing
their history; a lost or foreign key file is refused instead of starting new hashes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest

from service.runtime import Runtime
from storage import Database, IdKeyError, UsageRecord
from storage.connection import SqlConnection
from storage.migrations import apply_migrations

RAW_ID = 987_654_321_123
KNOWN_IDS = [RAW_ID + n for n in range(10)]


def db_text(path: Path) -> bytes:
    """Database file plus WAL, so uncheckpointed pages are searched too."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def key_file_of(db_path: Path) -> Path:
    return db_path.with_name(db_path.stem + ".key")


def hmac_hex(key: bytes, platform: str, raw_id: str | int) -> str:
    return hmac.new(key, f"{platform}\x00{raw_id}".encode(), hashlib.sha256).hexdigest()


def linkable_from_the_file_alone(path: Path, hashes: list[str]) -> int:
    """What a thief holding only the database file can do: try every 32-byte hex value the
    file contains as the key, and count the known ids it confirms."""
    text = db_text(path)
    candidates = set(re.findall(rb"[0-9a-f]{64}", text))
    found = 0
    for candidate in candidates:
        key = bytes.fromhex(candidate.decode())
        found = max(found, sum(hmac_hex(key, "telegram", i) in hashes for i in KNOWN_IDS))
    return found


async def test_a_stolen_database_cannot_confirm_known_ids(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        hashes = [db.hash_id("telegram", i) for i in KNOWN_IDS]
        for user in hashes:
            await db.usage.record(UsageRecord(platform="telegram", status="ok", user_hash=user))
    assert linkable_from_the_file_alone(db_path, hashes) == 0
    key_file = key_file_of(db_path)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text().strip())
    assert [hmac_hex(key, "telegram", i) for i in KNOWN_IDS] == hashes  # the key in use
    async with await Database.open(db_path) as db:
        assert db.hash_id("telegram", RAW_ID) == hashes[0]  # stable across reopen


async def make_old_install(db_path: Path, secret: bytes, users: list[int]) -> None:
    """A database as installs before the key file wrote it: the key in meta."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    sql = await SqlConnection.open(db_path)
    try:
        await apply_migrations(sql)
        async with sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES ('install_secret', ?)", (secret.hex(),)
            )
            await tx.execute("INSERT INTO meta (key, value) VALUES ('installed_at', '1')")
            for raw in users:
                await tx.execute(
                    "INSERT INTO usage (created_at, platform, user_hash, status)"
                    " VALUES (1700000000000, 'telegram', ?, 'ok')",
                    (hmac_hex(secret, "telegram", raw),),
                )
                await tx.execute(
                    "INSERT INTO prefs (platform, user_hash, style, updated_at)"
                    " VALUES ('telegram', ?, 'shinkai', 1)",
                    (hmac_hex(secret, "telegram", raw),),
                )
    finally:
        await sql.close()


async def test_an_old_install_moves_its_key_out_and_keeps_its_history(db_path: Path) -> None:
    secret = secrets.token_bytes(32)
    await make_old_install(db_path, secret, KNOWN_IDS)
    assert secret.hex().encode() in db_text(db_path)  # the problem: the key is in the file

    async with await Database.open(db_path) as db:
        user = db.hash_id("telegram", RAW_ID)
        assert user == hmac_hex(secret, "telegram", RAW_ID)  # same hashes as before
        assert (await db.prefs.get("telegram", user)).style == "shinkai"
        assert (await db.forget("telegram", user))["usage"] == 1  # /forget still finds them

    assert key_file_of(db_path).read_text().strip() == secret.hex()
    assert stat.S_IMODE(key_file_of(db_path).stat().st_mode) == 0o600
    assert secret.hex().encode() not in db_text(db_path)  # gone from the file and the WAL
    assert b"install_secret" not in db_text(db_path)
    hashes = [hmac_hex(secret, "telegram", i) for i in KNOWN_IDS]
    assert linkable_from_the_file_alone(db_path, hashes) == 0

    async with await Database.open(db_path) as db:  # the next start reads the file
        other = db.hash_id("telegram", RAW_ID + 1)
        assert other == hashes[1]
        assert (await db.prefs.get("telegram", other)).style == "shinkai"


async def test_a_lost_or_foreign_key_file_is_refused(db_path: Path, tmp_path: Path) -> None:
    async with await Database.open(db_path) as db:
        user = db.hash_id("telegram", RAW_ID)
    key_file = key_file_of(db_path)
    kept = tmp_path / "kept.key"
    key_file.rename(kept)
    with pytest.raises(IdKeyError, match="missing"):
        await Database.open(db_path)
    assert not key_file.exists()  # no new key was made up for an existing database

    key_file.write_text(secrets.token_hex(32) + "\n")
    key_file.chmod(0o600)
    with pytest.raises(IdKeyError, match="not the id key"):
        await Database.open(db_path)
    key_file.write_text("not a key\n")
    with pytest.raises(IdKeyError, match="not an animebot id key"):
        await Database.open(db_path)

    async with await Database.open(db_path, key_file=kept) as db:  # ANIMEBOT_ID_KEY_FILE
        assert db.hash_id("telegram", RAW_ID) == user


async def test_an_old_install_with_someone_elses_key_file_is_refused(db_path: Path) -> None:
    secret = secrets.token_bytes(32)
    await make_old_install(db_path, secret, [RAW_ID])
    key_file_of(db_path).write_text(secrets.token_hex(32) + "\n")
    with pytest.raises(IdKeyError, match="another id key"):
        await Database.open(db_path)
    assert secret.hex().encode() in db_text(db_path)  # the database's key was not thrown away


async def test_the_key_file_setting_puts_the_key_elsewhere(
    make_runtime: Any, tmp_path: Path
) -> None:
    key_file = tmp_path / "secrets" / "animebot-id.key"
    runtime: Runtime = await make_runtime(id_key_file=key_file)
    assert runtime.db.key_file == key_file and key_file.is_file()
    assert not key_file_of(runtime.settings.database).exists()
    key = bytes.fromhex(key_file.read_text().strip())
    assert runtime.db.hash_id("web", "x") == hmac_hex(key, "web", "x")


def test_the_command_line_names_the_missing_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    data = tmp_path / "data"
    for name in ("ANIMEBOT_DB", "ANIMEBOT_CONFIG", "ANIMEBOT_ID_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANIMEBOT_DATA", str(data))

    async def create() -> None:
        async with await Database.open(data / "animebot.sqlite3"):
            pass

    asyncio.run(create())
    (data / "animebot.key").unlink()
    assert main(["stats"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("animebot: the id key file") and str(data / "animebot.key") in err
    assert "ANIMEBOT_ID_KEY_FILE" in err and "\n" not in err
    assert not (data / "animebot.key").exists()
