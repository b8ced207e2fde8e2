"""`animebot stats` and `animebot purge` on the database named by the settings."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest

from cli.main import main
from storage import Database, UsageRecord


async def _populate(path: Path) -> None:
    async with await Database.open(path) as db:
        alice, bob = db.hash_id("web", "alice"), db.hash_id("telegram", 987654321)
        for record in (
            UsageRecord(
                platform="web", status="ok", user_hash=alice, style="hayao",
                compute_ms=850, queue_wait_ms=10,
            ),
            UsageRecord(
                platform="telegram", status="ok", user_hash=bob, style="shinkai",
                compute_ms=1200, queue_wait_ms=30,
            ),
            UsageRecord(
                platform="web", status="ok", user_hash=alice, style="hayao", cache_hit=True
            ),
            UsageRecord(platform="web", status="error", user_hash=alice, error_kind="damaged"),
            UsageRecord(
                platform="discord", status="refused", user_hash=bob, error_kind="rate_limited"
            ),
        ):  # fmt: skip
            await db.usage.record(record)
        for n in range(2):
            await db.cache.put(
                f"result{n:04d}", bytes(1000), kind="result", mime="image/jpeg", owner_hash=alice
            )


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ANIMEBOT_DB", "ANIMEBOT_CONFIG", "ANIMEBOT_CACHE_MB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANIMEBOT_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def populated(data_dir: Path) -> Path:
    asyncio.run(_populate(data_dir / "animebot.sqlite3"))
    return data_dir


def test_stats_prints_a_readable_table(populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--days", "7"]) == 0
    out = capsys.readouterr().out
    lines = [line.rstrip() for line in out.splitlines()]
    assert lines[0].startswith("animebot statistics: last 7 days")
    assert "requests        5" in lines
    assert "converted       3" in lines
    assert "cache hit rate  33% (1 of 3)" in lines
    assert any(line.split() == ["compute", "850", "ms", "1,200", "ms"] for line in lines)
    assert any(line.split()[1:] == ["1", "2", "3"] for line in lines)  # telegram, web, total
    for section, row in (
        ("per platform", ["web", "2"]),
        ("per style", ["hayao", "2"]),
        ("errors by kind", ["damaged", "1"]),
        ("refusals by reason", ["rate_limited", "1"]),
    ):
        start = lines.index(section)
        assert row in [line.split() for line in lines[start + 1 : start + 4]], section
    assert "alice" not in out and "987654321" not in out  # raw ids never printed


def test_stats_csv(populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["section", "key", "platform", "value"]
    assert ["per_platform", "web", "", "2"] in rows
    assert ["total", "ok", "", "3"] in rows
    assert ["refusal_reason", "rate_limited", "", "1"] in rows


def test_stats_on_a_fresh_install_is_nothing_recorded_yet_not_a_failure(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats"]) == 0  # like purge: nothing has happened yet, nothing failed
    out = capsys.readouterr().out
    assert out.startswith("nothing recorded yet: ")
    assert f"no database at {data_dir / 'animebot.sqlite3'}" in out
    assert main(["stats", "--csv"]) == 0
    csv_mode = capsys.readouterr()
    assert csv_mode.out == "" and csv_mode.err.startswith("nothing recorded yet: ")
    assert not data_dir.exists()  # looking did not create one


def test_invalid_settings_stop_stats_and_purge(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANIMEBOT_CACHE_MB", "-1")
    for command in ("stats", "purge"):
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [
            f"animebot {command}: invalid configuration",
            "  ANIMEBOT_CACHE_MB='-1': must be greater than 0",
        ]


def test_purge_applies_the_budget_and_says_what_it_removed(
    populated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANIMEBOT_CACHE_MB", "0.0001")  # about 100 bytes: both entries go
    assert main(["purge"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "purged 2 item(s) from the cache and counters:"
    assert "2  cache entries evicted to fit ANIMEBOT_CACHE_MB" in [line.strip() for line in out]
    cache_dir = populated / "animebot-cache"
    assert not [p for p in cache_dir.rglob("*") if p.is_file()]
    assert main(["purge"]) == 0
    assert capsys.readouterr().out.startswith("purged 0 item(s)")


def test_purge_without_a_database_is_a_no_op(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["purge"]) == 0
    assert "nothing to purge" in capsys.readouterr().out
    assert not data_dir.exists()
