"""Usage rows and the statistics computed from them, checked against hand-made rows."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from storage import Database, DayCount, StatsSummary, UsageRecord, percentile

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
DAY_MS = 86_400_000
NOW_MS = int(NOW * 1000)


def ok(platform: str, user: str | None, style: str, days_ago: float, **kw: object) -> UsageRecord:
    return UsageRecord(
        platform=platform,
        status="ok",
        user_hash=user,
        style=style,
        created_at=NOW_MS - int(days_ago * DAY_MS),
        **kw,  # type: ignore[arg-type]
    )


async def test_record_stores_every_field(db: Database) -> None:
    rec = UsageRecord(
        platform="web",
        status="ok",
        user_hash="u",
        chat_hash="c",
        style="hayao",
        faces=True,
        side_by_side=False,
        input_bytes=1000,
        input_w=640,
        input_h=480,
        output_bytes=900,
        cache_hit=True,
        queue_wait_ms=12.6,
        compute_ms=345.2,
        request_id="req-1",
        created_at=123,
    )
    first = await db.usage.record(rec)
    second = await db.usage.record(UsageRecord(platform="cli", status="error", error_kind="x"))
    assert second > first
    row = await db._sql.fetchone("SELECT * FROM usage WHERE id = ?", (first,))
    assert row is not None
    assert dict(row) == {
        "id": first,
        "created_at": 123,
        "platform": "web",
        "user_hash": "u",
        "chat_hash": "c",
        "style": "hayao",
        "faces": 1,
        "side_by_side": 0,
        "input_bytes": 1000,
        "input_w": 640,
        "input_h": 480,
        "output_bytes": 900,
        "cache_hit": 1,
        "queue_wait_ms": 13,
        "compute_ms": 345,
        "status": "ok",
        "error_kind": None,
        "request_id": "req-1",
        "outcome_key": "u:req-1",  # the request's one outcome row (per person)
    }
    created = await db._sql.scalar("SELECT created_at FROM usage WHERE id = ?", (second,))
    assert abs(created - time.time() * 1000) < 60_000  # defaults to now


def test_record_validates_status() -> None:
    with pytest.raises(ValueError, match="status"):
        UsageRecord(platform="web", status="weird")  # type: ignore[arg-type]


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([7], 95) == 7
    values = list(range(1, 21))
    assert percentile(values, 50) == 10
    assert percentile(values, 95) == 19
    assert percentile(values, 100) == 20
    assert percentile([5, 1, 3], 50) == 3  # order of input does not matter


async def seed(db: Database) -> None:
    rows = [
        # ten uncached conversions: compute 10..100 ms, queue wait 1..10 ms
        *[
            ok(
                "telegram" if i % 2 else "discord",
                f"u{i % 3}",
                "hayao" if i < 6 else "paprika",
                days_ago=i % 3,
                compute_ms=10 * (i + 1),
                queue_wait_ms=i + 1,
            )
            for i in range(10)
        ],
        # three cache hits: tiny latencies that must not enter the percentiles
        *[
            ok("web", "u9", "hayao", 0.1, cache_hit=True, compute_ms=1, queue_wait_ms=0)
            for _ in range(3)
        ],
        # outside the 7-day window: ignored everywhere
        ok("telegram", "old-user", "shinkai", days_ago=8, compute_ms=5000),
        UsageRecord(
            platform="telegram",
            status="error",
            user_hash="u1",
            style="hayao",
            error_kind="damaged",
            compute_ms=9999,
            request_id="r-err-1",
            created_at=NOW_MS - 3000,
        ),
        UsageRecord(
            platform="discord",
            status="error",
            user_hash="u4",
            error_kind="damaged",
            request_id="r-err-2",
            created_at=NOW_MS - 2000,
        ),
        UsageRecord(platform="web", status="error", created_at=NOW_MS - 5 * DAY_MS),
        UsageRecord(
            platform="telegram",
            status="refused",
            user_hash="u5",
            error_kind="busy",
            created_at=NOW_MS - 1000,
        ),
        UsageRecord(
            platform="web", status="refused", error_kind="rate_limited", created_at=NOW_MS - 10
        ),
    ]
    for rec in rows:
        await db.usage.record(rec)


async def test_summary_numbers(db: Database) -> None:
    await seed(db)
    s = await db.stats.summary(days=7, now=NOW)
    assert (s.total, s.ok, s.error, s.refused) == (18, 13, 3, 2)
    # u0, u1, u2 (conversions), u9 (cache hits), u4, u5 (error/refused); None is no user
    assert s.unique_users == 6
    assert s.cache_hits == 3
    assert s.cache_hit_rate == pytest.approx(3 / 13)
    assert (s.compute_p50_ms, s.compute_p95_ms) == (50, 100)
    assert (s.queue_wait_p50_ms, s.queue_wait_p95_ms) == (5, 10)
    assert s.per_style == {"hayao": 9, "paprika": 4}
    assert s.per_platform == {"discord": 5, "telegram": 5, "web": 3}
    assert s.error_kinds == {"damaged": 2, "unknown": 1}
    assert s.refusal_reasons == {"busy": 1, "rate_limited": 1}
    # NOW is 22:13 UTC, so "0.1 days ago" (2.4 h) is still 2023-11-14.
    expected = {
        DayCount("2023-11-12", "discord", 2),  # i = 2, 8
        DayCount("2023-11-12", "telegram", 1),  # i = 5
        DayCount("2023-11-13", "discord", 1),  # i = 4
        DayCount("2023-11-13", "telegram", 2),  # i = 1, 7
        DayCount("2023-11-14", "discord", 2),  # i = 0, 6
        DayCount("2023-11-14", "telegram", 2),  # i = 3, 9
        DayCount("2023-11-14", "web", 3),
    }
    assert set(s.per_day) == expected
    assert s.per_day == sorted(s.per_day)  # ordered by day, then platform


async def test_summary_window_and_empty(db: Database) -> None:
    await seed(db)
    wide = await db.stats.summary(days=30, now=NOW)
    assert wide.ok == 14 and wide.per_style["shinkai"] == 1
    assert wide.compute_p95_ms == 5000
    later = await db.stats.summary(days=1, now=NOW + 30 * 86_400)
    assert later == StatsSummary.empty(days=1, now=NOW + 30 * 86_400)
    assert later.compute_p50_ms is None and later.cache_hit_rate == 0.0


async def test_recent_failures_have_no_user_ids(db: Database) -> None:
    await seed(db)
    failures = await db.stats.recent_failures(limit=3)
    assert [f.error_kind for f in failures] == ["rate_limited", "busy", "damaged"]
    assert failures[2].request_id == "r-err-2"
    assert failures[0].status == "refused"
    assert "user_hash" not in failures[0]._fields and "chat_hash" not in failures[0]._fields
    assert len(await db.stats.recent_failures()) == 5


async def test_to_dict_and_csv(db: Database) -> None:
    await seed(db)
    s = await db.stats.summary(days=7, now=NOW)
    data = json.loads(json.dumps(s.to_dict()))
    assert data["ok"] == 13 and data["compute_p95_ms"] == 100
    assert {"day": "2023-11-14", "platform": "web", "conversions": 3} in data["per_day"]
    out = io.StringIO()
    csv.writer(out).writerows(s.to_csv_rows())
    parsed = list(csv.reader(io.StringIO(out.getvalue())))
    assert parsed[0] == ["section", "key", "platform", "value"]
    assert ["per_day", "2023-11-14", "web", "3"] in parsed
    assert ["per_style", "hayao", "", "9"] in parsed
    assert ["total", "ok", "", "13"] in parsed
    empty = StatsSummary.empty(now=NOW).to_csv_rows()
    assert ("total", "compute_p50_ms", "", "") in empty


def row_of(user: str, request_id: str, **kw: object) -> UsageRecord:
    return UsageRecord(platform="web", user_hash=user, request_id=request_id, **kw)  # type: ignore[arg-type]


async def test_a_request_keeps_one_outcome_row(db: Database) -> None:
    """A job run again (its worker died after recording) replaces its row; a row put off by a
    shutdown (`once=False`) stays beside the outcome; another person's equal id is theirs."""
    first = await db.usage.record(row_of("u", "r1", status="ok"))
    deferred = await db.usage.record(
        row_of("u", "r2", status="refused", error_kind="shutting_down", once=False)
    )
    again = await db.usage.record(row_of("u", "r1", status="ok", cache_hit=True))
    final = await db.usage.record(row_of("u", "r2", status="ok"))
    other = await db.usage.record(row_of("v", "r1", status="ok"))
    assert again == first and len({first, deferred, final, other}) == 4
    rows = await db._sql.fetchall("SELECT id, status, cache_hit FROM usage ORDER BY id")
    assert [(r["id"], r["status"], r["cache_hit"]) for r in rows] == [
        (first, "ok", 1),
        (deferred, "refused", 0),
        (final, "ok", 0),
        (other, "ok", 0),
    ]
    assert await db.usage.update_outcome("r2", "error", "delivery_failed")
    kinds = await db._sql.fetchall("SELECT id, error_kind FROM usage WHERE request_id = 'r2'")
    assert {r["id"]: r["error_kind"] for r in kinds} == {
        deferred: "shutting_down",
        final: "delivery_failed",
    }
