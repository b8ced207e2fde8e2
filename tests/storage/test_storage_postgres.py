"""What only the PostgreSQL backend has: the URL setting, parameter rewriting, the version
table, concurrent first opens from several processes, the key file it requires."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import asyncpg
import pytest

from storage import LATEST_VERSION, Database, IdKeyError, SchemaTooNewError
from storage.pg import is_url, redact, translate
from tests.storage.conftest import Target


def test_parameters_are_rewritten_to_positional_numbers() -> None:
    text, names = translate("SELECT :a, :b::text, ':c', \"x:d\" WHERE k = :a")
    assert text == "SELECT $1, $2::text, ':c', \"x:d\" WHERE k = $1"
    assert names == ("a", "b")
    assert translate("DELETE FROM t WHERE a = ? AND b = ?") == (
        "DELETE FROM t WHERE a = $1 AND b = $2",
        2,
    )
    with pytest.raises(ValueError):
        translate("SELECT :a, ?")


def test_the_setting_tells_urls_from_paths_and_hides_passwords() -> None:
    assert is_url("postgresql://u:pw@db:5432/animebot") and is_url("postgres://db/x")
    assert not is_url("data/animebot.sqlite3") and not is_url(Path("postgresql:/x"))
    assert redact("postgresql://u:pw@db:5432/animebot") == "postgresql://u:***@db:5432/animebot"
    assert redact("postgresql://u@db/animebot") == "postgresql://u@db/animebot"


async def test_ping_answers_on_both_backends(db: Database) -> None:
    await asyncio.wait_for(db.ping(), 5)
    assert await db.schema_version() == LATEST_VERSION


async def test_several_processes_opening_a_fresh_database_agree(
    pg_url: str, tmp_path: Path
) -> None:
    """Front ends and workers starting at once: one migrates, one key wins, all agree."""
    key = tmp_path / "animebot.key"
    opened = await asyncio.gather(*(Database.open(pg_url, key_file=key) for _ in range(4)))
    try:
        assert {await db.schema_version() for db in opened} == {LATEST_VERSION}
        assert len({db.hash_id("web", 1) for db in opened}) == 1
        versions = await opened[0]._sql.scalar("SELECT count(*) FROM schema_version")
        assert versions == 1
    finally:
        for db in opened:
            await db.close()


async def test_the_key_file_is_required_and_checked(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(IdKeyError, match="ANIMEBOT_ID_KEY_FILE"):
        await Database.open(pg_url)
    key = tmp_path / "a.key"
    async with await Database.open(pg_url, key_file=key) as db:
        user = db.hash_id("telegram", 42)
    foreign = tmp_path / "b.key"
    foreign.write_text(secrets.token_hex(32) + "\n")
    with pytest.raises(IdKeyError, match="not the id key"):
        await Database.open(pg_url, key_file=foreign)
    with pytest.raises(IdKeyError, match="missing"):
        await Database.open(pg_url, key_file=tmp_path / "lost.key")
    copy = tmp_path / "machine2.key"  # another machine holds a copy of the same file
    copy.write_bytes(key.read_bytes())
    async with await Database.open(pg_url, key_file=copy) as db:
        assert db.hash_id("telegram", 42) == user


async def test_a_newer_schema_is_refused_untouched(pg_url: str, tmp_path: Path) -> None:
    async with await Database.open(pg_url, key_file=tmp_path / "k") as db:
        await db._sql.scalar("UPDATE schema_version SET version = 99 RETURNING version")
    with pytest.raises(SchemaTooNewError, match="99"):
        await Database.open(pg_url, key_file=tmp_path / "k")
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT version FROM schema_version") == 99
    finally:
        await conn.close()


async def test_the_url_never_appears_with_its_password(pg_url: str, tmp_path: Path) -> None:
    async with await Database.open(pg_url, key_file=tmp_path / "k") as db:
        assert db.dialect == "postgresql" and db.path is None and db.cache_dir is None
        assert db.name == redact(pg_url)


async def test_cache_entries_are_reachable_from_another_machine(target: Target) -> None:
    """What one process stores, another process with its own connection reads back."""
    key = "ab" + "0" * 62
    async with await target.open() as first, await target.open() as second:
        await first.cache.put(key, b"result", kind="result", mime="image/png", owner_hash="u")
        entry = await second.cache.get(key)
        assert entry is not None and entry.data == b"result" and entry.hits == 1


def test_the_setting_keeps_the_url_and_never_logs_its_password(tmp_path: Path) -> None:
    from service.settings import Settings

    url = "postgresql://bot:s3cret-pw@db.internal:5432/animebot"
    settings = Settings.from_env({"ANIMEBOT_DB": url, "ANIMEBOT_DATA": str(tmp_path)})
    assert settings.db.target == url and not settings.db.is_sqlite
    assert settings.db.key_file == tmp_path / "animebot.key"  # no folder of its own
    assert "s3cret-pw" not in "\n".join(settings.describe())
    assert "ANIMEBOT_DB=postgresql://bot:***@db.internal:5432/animebot" in settings.describe()
    sqlite = Settings.from_env({"ANIMEBOT_DB": str(tmp_path / "a.db")})
    assert sqlite.db.target == tmp_path / "a.db" and sqlite.db.is_sqlite
    assert sqlite.db.key_file is None  # SQLite's default: beside the file


async def test_an_unreachable_server_is_a_clear_error_without_the_password(
    tmp_path: Path,
) -> None:
    from storage import DatabaseUnavailable
    from tests.servers import free_port

    url = f"postgresql://bot:s3cret-pw@127.0.0.1:{free_port()}/animebot"
    with pytest.raises(DatabaseUnavailable, match="cannot connect") as refused:
        await Database.open(url, key_file=tmp_path / "k")
    assert "s3cret-pw" not in str(refused.value) and "127.0.0.1" in str(refused.value)


async def test_a_wrong_database_name_is_a_clear_error(pg_url: str, tmp_path: Path) -> None:
    from storage import DatabaseUnavailable

    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        await Database.open(pg_url + "_missing", key_file=tmp_path / "k")
