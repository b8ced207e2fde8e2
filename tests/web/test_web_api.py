"""The web front end through HTTP: the JSON API, the page, health, metrics and the dashboard,
all against a real Runtime (models, SQLite, service) served by aiohttp's TestServer."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

import i18n
from core.errors import ImageTooLarge
from service.errors import InternalError
from tests.web.helpers import PHOTO, MakeClient, decode, form, tiny_png
from web.app import STATE, WebFrontEnd, WebState
from web.lang import parse_accept_language
from web.routes_admin import ADMIN_COOKIE
from web.routes_public import UID_COOKIE

TOKEN = "s3cret-admin-token-for-tests"
Client = TestClient[Any, Any]


def state_of(client: Client) -> WebState:
    app = client.app
    assert app is not None
    state: WebState = app[STATE]
    return state


async def visit(client: Client) -> None:
    """Open the page like a browser does: it hands out the anonymous id cookie."""
    response = await client.get("/")
    assert response.status == 200
    assert UID_COOKIE in {c.key for c in client.session.cookie_jar}


async def usage_rows(client: Client) -> list[dict[str, Any]]:
    db = state_of(client).runtime.db
    rows = await db._sql.fetchall("SELECT * FROM usage ORDER BY id")
    return [dict(r) for r in rows]


# -- converting -----------------------------------------------------------------------------


async def test_convert_returns_the_image_with_its_details(client: Client, photos_dir: Path) -> None:
    await visit(client)
    photo = (photos_dir / PHOTO).read_bytes()
    response = await client.post("/api/convert", data=form(photo, style="hayao", faces="1"))
    assert response.status == 200, await response.text()
    assert response.content_type == "image/jpeg"
    body = await response.read()
    image = decode(body)
    assert image.format == "JPEG"
    width, height = map(int, response.headers["X-Animebot-Size"].split("x"))
    assert image.size == (width, height) and max(width, height) <= 2048
    assert response.headers["X-Animebot-Style"] == "hayao"
    assert response.headers["X-Animebot-Cache"] == "miss"
    assert int(response.headers["X-Animebot-Time-Ms"]) > 0
    assert int(response.headers["X-Animebot-Compute-Ms"]) > 0
    assert re.fullmatch(r"[0-9a-f]{10}", response.headers["X-Animebot-Request-Id"])
    assert "anime_hayao.jpg" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    rows = await usage_rows(client)
    assert [(r["platform"], r["status"], r["style"]) for r in rows] == [("web", "ok", "hayao")]
    uid = next(c.value for c in client.session.cookie_jar if c.key == UID_COOKIE)
    assert uid not in json.dumps(rows)  # only the HMAC of the anonymous id is stored


async def test_a_repeat_comes_from_the_cache_and_is_counted(
    client: Client, photos_dir: Path
) -> None:
    await visit(client)
    photo = (photos_dir / PHOTO).read_bytes()
    first = await client.post("/api/convert", data=form(photo, style="shinkai"))
    assert first.status == 200
    second = await client.post("/api/convert", data=form(photo, style="shinkai"))
    assert second.status == 200
    assert first.headers["X-Animebot-Cache"] == "miss"
    assert second.headers["X-Animebot-Cache"] == "hit"
    assert await second.read() == await first.read()
    summary = await state_of(client).runtime.service.stats(1)
    assert (summary.ok, summary.cache_hits, summary.per_platform) == (2, 1, {"web": 2})


async def test_side_by_side_is_wider_than_the_result(client: Client) -> None:
    await visit(client)
    image = tiny_png(1, size=96)
    plain = await client.post("/api/convert", data=form(image, side_by_side="0"))
    both = await client.post("/api/convert", data=form(image, side_by_side="1"))
    assert plain.status == both.status == 200
    assert decode(await both.read()).width > decode(await plain.read()).width


@pytest.mark.parametrize("lang", ["en", "zh", "ru"])
async def test_bad_input_is_a_translated_400(client: Client, edge_dir: Path, lang: str) -> None:
    data = (edge_dir / "not_an_image.jpg").read_bytes()
    response = await client.post(
        "/api/convert", data=form(data), headers={"Accept-Language": f"{lang};q=0.9,de;q=0.5"}
    )
    assert response.status == 400
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["code"] == "not_image"
    assert body["message"] == i18n.t("error.not_image", lang)
    assert "Traceback" not in await response.text()
    rows = await usage_rows(client)
    assert [(r["status"], r["error_kind"]) for r in rows] == [("error", "not_image")]


async def test_the_lang_field_wins_over_the_browser_language(client: Client) -> None:
    response = await client.post(
        "/api/convert", data=form(None, lang="ru"), headers={"Accept-Language": "zh"}
    )
    assert response.status == 400
    body = await response.json()
    assert (body["code"], body["message"]) == ("empty", i18n.t("error.empty", "ru"))


async def test_a_missing_image_or_an_unknown_style_is_a_400(client: Client) -> None:
    empty = await client.post("/api/convert", data=form(None, style="hayao"))
    assert empty.status == 400
    assert (await empty.json())["code"] == "empty"
    wrong = await client.post("/api/convert", data=form(tiny_png(2), style="picasso"))
    assert wrong.status == 400
    body = await wrong.json()
    assert body["code"] == "unknown_style"
    assert "picasso" in body["message"] and "hayao" in body["message"]
    not_form = await client.post(
        "/api/convert", data=b"{}", headers={"Content-Type": "application/json"}
    )
    assert not_form.status == 400


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 16384):
        yield data[start : start + 16384]


@pytest.mark.parametrize("lang", ["en", "zh"])
async def test_too_large_uploads_are_a_translated_413(make_client: MakeClient, lang: str) -> None:
    client = await make_client(max_upload_mb=0.05)  # 51 KiB photos; the body may add 64 KiB
    limit = state_of(client).upload_limit
    expected = i18n.error_message(ImageTooLarge("x", limit=limit), lang)
    headers = {"Accept-Language": lang}

    # Declared too large: refused from the Content-Length, before the body is read.
    big = tiny_png(3, size=400)
    assert len(big) > 200_000
    declared = await client.post("/api/convert", data=form(big), headers=headers)
    # Streamed without a length: aiohttp's client_max_size stops it while reading.
    boundary = "animebot-test-boundary"
    raw = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"'
            "\r\nContent-Type: image/png\r\n\r\n"
        ).encode()
        + big
        + f"\r\n--{boundary}--\r\n".encode()
    )
    streamed = await client.post(
        "/api/convert",
        data=_chunks(raw),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    # Over the photo limit but within the body allowance: the service's own check.
    middle = tiny_png(4, size=160)
    assert limit < len(middle) < state_of(client).body_limit - 4096
    checked = await client.post("/api/convert", data=form(middle), headers=headers)

    for response in (declared, streamed, checked):
        assert response.status == 413
        body = await response.json()
        assert (body["code"], body["message"]) == ("too_large", expected)


async def test_rate_limit_is_a_429_with_retry_after(make_client: MakeClient) -> None:
    client = await make_client(rate_burst=1, rate_per_minute=1.0)
    await visit(client)
    first = await client.post("/api/convert", data=form(tiny_png(5)))
    assert first.status == 200
    second = await client.post(
        "/api/convert", data=form(tiny_png(6)), headers={"Accept-Language": "ru-RU"}
    )
    assert second.status == 429
    retry = int(second.headers["Retry-After"])
    assert 1 <= retry <= 60
    body = await second.json()
    assert body["code"] == "rate_limited" and body["retry_after_s"] == retry
    assert str(retry) in body["message"]
    assert body["message"] == i18n.t("error.rate_limited", "ru", seconds=retry)
    rows = await usage_rows(client)
    assert [(r["status"], r["error_kind"]) for r in rows] == [
        ("ok", None),
        ("refused", "rate_limited"),
    ]
    assert rows[0]["user_hash"] == rows[1]["user_hash"]  # one person: the cookie


async def test_cookieless_clients_are_limited_by_address(make_client: MakeClient) -> None:
    client = await make_client(rate_burst=1, rate_per_minute=1.0)
    first = await client.post("/api/convert", data=form(tiny_png(7)))
    assert first.status == 200
    client.session.cookie_jar.clear()  # a script that drops cookies
    second = await client.post("/api/convert", data=form(tiny_png(8)))
    assert second.status == 429


async def test_daily_quota_is_a_429_until_midnight(make_client: MakeClient) -> None:
    client = await make_client(daily_quota=1)
    await visit(client)
    assert (await client.post("/api/convert", data=form(tiny_png(9)))).status == 200
    second = await client.post("/api/convert", data=form(tiny_png(10)))
    assert second.status == 429
    assert (await second.json())["code"] == "quota"
    assert 1 <= int(second.headers["Retry-After"]) <= 86400


async def test_an_internal_failure_is_a_500_with_a_reference_and_no_details(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = state_of(client).runtime.engine

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("secret detail /etc/passwd")

    monkeypatch.setattr(engine, "convert", broken)
    response = await client.post(
        "/api/convert", data=form(tiny_png(11)), headers={"Accept-Language": "zh"}
    )
    assert response.status == 500
    text = await response.text()
    assert "secret detail" not in text and "RuntimeError" not in text
    body = json.loads(text)
    assert body["code"] == "internal"
    assert body["message"] == i18n.error_message(InternalError(body["request_id"]), "zh")
    rows = await usage_rows(client)
    assert rows[-1]["request_id"] == body["request_id"]


async def test_styles_lists_the_installed_scene_styles(client: Client) -> None:
    response = await client.get("/api/styles", headers={"Accept-Language": "zh-CN"})
    assert response.status == 200
    body = await response.json()
    runtime = state_of(client).runtime
    assert [s["name"] for s in body["styles"]] == runtime.service.styles()
    assert [s["name"] for s in body["styles"] if s["default"]] == [body["default"]]
    assert {s["label"] for s in body["styles"]} >= {i18n.t("style.hayao", "zh")}


async def test_styles_with_a_preview_link_it_and_the_page_serves_only_those(
    client: Client,
) -> None:
    body = await (await client.get("/api/styles")).json()
    registry = state_of(client).runtime.engine.registry
    with_preview = [s for s in body["styles"] if s["preview"]]
    assert with_preview, "the shipped hayao and shinkai carry preview.jpg"
    for entry in body["styles"]:
        spec = registry.get(entry["name"])
        assert (entry["preview"] is None) == (spec.preview is None)
    first = with_preview[0]
    response = await client.get(first["preview"])
    assert response.status == 200 and response.content_type == "image/jpeg"
    assert await response.read() == registry.get(first["name"]).preview.read_bytes()
    page = await (await client.get("/")).text()
    assert f'data-preview="{first["preview"]}"' in page and 'id="style-preview"' in page
    for bad in ("nosuch", "face_kpop", "..%2F..%2Fhayao"):
        assert (await client.get(f"/styles/{bad}/preview.jpg")).status == 404


async def test_unknown_api_paths_are_json_404(client: Client) -> None:
    response = await client.get("/api/nothing", headers={"Accept-Language": "ru"})
    assert response.status == 404
    assert (await response.json())["message"] == i18n.t("web.error_not_found", "ru")


# -- the page -------------------------------------------------------------------------------


async def test_the_page_is_translated_and_secure(client: Client) -> None:
    response = await client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert response.status == 200
    text = await response.text()
    assert '<html lang="zh">' in text
    assert i18n.t("web.heading", "zh") in text
    assert 'name="image"' in text and 'for="image"' in text  # labelled file input
    for name in state_of(client).runtime.service.styles():
        assert f'value="{name}"' in text
    assert "http://" not in text.replace("http://www.w3.org", "")  # no CDN, works offline
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    css = re.search(r'href="(/static/style\.css\?v=\w+)"', text)
    js = re.search(r'src="(/static/app\.js\?v=\w+)"', text)
    assert css and js
    for url in (css.group(1), js.group(1)):
        assert (await client.get(url)).status == 200


async def test_a_chosen_language_is_remembered(client: Client) -> None:
    first = await client.get("/?lang=ru", headers={"Accept-Language": "en"})
    assert '<html lang="ru">' in await first.text()
    again = await client.get("/", headers={"Accept-Language": "en"})
    assert '<html lang="ru">' in await again.text()


def test_accept_language_honours_quality_values() -> None:
    assert parse_accept_language("de-DE,ru;q=0.4,zh-TW;q=0.8,en;q=0.1") == ["zh", "ru", "en"]
    assert parse_accept_language("fr, *;q=0.5") == []
    assert parse_accept_language("ru;q=0, en") == ["en"]
    assert parse_accept_language(None) == []


# -- health and metrics ---------------------------------------------------------------------


async def test_health_readiness_and_draining(make_runtime: Any) -> None:
    runtime = await make_runtime()
    front = WebFrontEnd(runtime, host="127.0.0.1", port=0)
    await front.start()
    try:
        assert front.port != 0
        async with aiohttp.ClientSession(base_url=front.url) as http:
            assert (await http.get("/healthz")).status == 200
            ready = await http.get("/readyz")
            assert ready.status == 200
            assert (await ready.json())["checks"] == {
                "models": True,
                "database": True,
                "accepting": True,
            }
            front.begin_drain()
            draining = await http.get("/readyz")
            assert draining.status == 503
            assert (await draining.json())["checks"]["accepting"] is False
            refused = await http.post(
                "/api/convert", data=form(tiny_png(12)), headers={"Accept-Language": "ru"}
            )
            assert refused.status == 503
            assert int(refused.headers["Retry-After"]) >= 1
            assert (await refused.json())["message"] == i18n.t("web.error_draining", "ru")
            assert (await http.get("/healthz")).status == 200  # alive while draining
    finally:
        await front.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(front.url + "healthz")


async def test_readiness_fails_when_the_database_is_gone(client: Client) -> None:
    await state_of(client).runtime.db.close()
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["database"] is False


async def test_metrics_expose_the_service_and_the_process(client: Client) -> None:
    await visit(client)
    assert (await client.post("/api/convert", data=form(tiny_png(13)))).status == 200
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'animebot_requests_total{kind="computed",platform="web",status="ok"} 1.0' in text
    assert "animebot_compute_seconds_bucket" in text
    assert "animebot_conversions_inflight 0.0" in text
    assert 'animebot_http_responses_total{route="/api/convert",status="200"} 1.0' in text
    assert "process_cpu_seconds_total" in text and "python_info" in text


# -- the dashboard --------------------------------------------------------------------------


async def test_the_dashboard_is_off_without_a_token(client: Client) -> None:
    page = await client.get("/admin")
    assert page.status == 404
    assert "ANIMEBOT_ADMIN_TOKEN" in await page.text()
    api = await client.get("/api/admin/stats", headers={"Authorization": "Bearer anything"})
    assert api.status == 404
    assert (await api.json())["code"] == "admin_disabled"
    login = await client.post("/admin/login", data={"token": ""})
    assert login.status == 404


def tampered(value: str) -> str:
    """The same cookie with its last character changed (always to a different one)."""
    return value[:-1] + ("1" if value[-1] == "0" else "0")


async def test_the_dashboard_refuses_missing_and_wrong_tokens(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        for path in ("/api/admin/stats", "/api/admin/chart.png"):
            response = await client.get(path, headers=headers)
            assert response.status == 401, (path, headers)
            assert (await response.json())["code"] == "unauthorized"
    page = await client.get("/admin")
    assert page.status == 401
    text = await page.text()
    assert 'name="token"' in text and 'type="password"' in text and TOKEN not in text
    # forged and altered session cookies: only ids the server issued and keeps open
    session = state_of(client).admin.new_session()
    for value in ("0.abc", f"{int(time.time()) + 60}.{'0' * 64}", tampered(session)):
        client.session.cookie_jar.update_cookies({ADMIN_COOKIE: value})
        assert (await client.get("/api/admin/stats")).status == 401
    client.session.cookie_jar.update_cookies({ADMIN_COOKIE: session})
    assert (await client.get("/api/admin/stats")).status == 200


async def test_bearer_token_opens_the_api(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    stats = await client.get("/api/admin/stats?days=7", headers=bearer)
    assert stats.status == 200
    assert (await stats.json())["days"] == 7
    chart = await client.get("/api/admin/chart.png?days=7", headers=bearer)
    assert chart.status == 200
    assert (await chart.read()).startswith(b"\x89PNG\r\n\x1a\n")
    bad = await client.get("/api/admin/stats?days=0", headers=bearer)
    assert bad.status == 400
    assert (await client.get("/admin", headers=bearer)).status == 200


async def test_sign_in_flow_sets_a_strict_http_only_cookie(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await make_client(admin_token=TOKEN)
    wrong = await client.post("/admin/login", data={"token": "nope", "days": "7"})
    assert wrong.status == 401
    assert i18n.t("web.admin_wrong_token", "en") in await wrong.text()
    assert ADMIN_COOKIE not in {c.key for c in client.session.cookie_jar}

    right = await client.post(
        "/admin/login", data={"token": TOKEN, "days": "7"}, allow_redirects=False
    )
    assert right.status == 303
    assert right.headers["Location"] == "/admin?days=7"
    cookie = right.headers["Set-Cookie"]
    assert cookie.startswith(f"{ADMIN_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie

    dashboard = await client.get("/admin?days=7")
    assert dashboard.status == 200
    text = await dashboard.text()
    assert 'id="stats"' in text and 'id="chart-days"' in text and TOKEN not in text
    assert (await client.get("/api/admin/stats")).status == 200

    out = await client.post("/admin/logout", allow_redirects=False)
    assert out.status == 303
    assert (await client.get("/api/admin/stats")).status == 401
    assert TOKEN not in caplog.text


async def test_failed_sign_ins_are_rate_limited(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    statuses = [
        (await client.post("/admin/login", data={"token": f"guess{i}"})).status for i in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    refused = await client.post("/admin/login", data={"token": TOKEN})
    assert refused.status == 429  # even the right token waits: no oracle for guessers
    assert int(refused.headers["Retry-After"]) >= 1


async def test_dashboard_json_has_the_statistics_after_conversions(
    make_client: MakeClient, edge_dir: Path
) -> None:
    client = await make_client(admin_token=TOKEN)
    await visit(client)
    image = tiny_png(14)
    for _ in range(2):
        assert (await client.post("/api/convert", data=form(image, style="hayao"))).status == 200
    bad = await client.post("/api/convert", data=form((edge_dir / "truncated.jpg").read_bytes()))
    assert bad.status == 400
    response = await client.get(
        "/api/admin/stats?days=3", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status == 200
    data = await response.json()
    summary = data["summary"]
    assert (summary["total"], summary["ok"], summary["error"]) == (3, 2, 1)
    assert summary["per_platform"] == {"web": 2}
    assert summary["per_style"] == {"hayao": 2}
    assert summary["cache_hits"] == 1 and summary["cache_hit_rate"] == 0.5
    assert summary["compute_p50_ms"] is not None and summary["compute_p95_ms"] is not None
    assert summary["error_kinds"] == {"damaged": 1}
    assert [d["platform"] for d in summary["per_day"]] == ["web"]
    assert len(data["day_list"]) in (3, 4)
    assert data["now"] == {"queue_waiting": 0, "running": 0, "inflight": 0, "draining": False}
    [failure] = data["failures"]
    assert failure["error_kind"] == "damaged" and failure["platform"] == "web"
    assert not any("hash" in key or "user" in key for key in failure)


async def test_every_web_request_is_one_usage_row(make_client: MakeClient) -> None:
    """Success, refusals before and inside the job runner, and failures: one row each (the
    web outlet hands the answer back in-process, so a delivery cannot fail here)."""
    client = await make_client(max_upload_mb=0.05)
    await visit(client)
    ok = await client.post("/api/convert", data=form(tiny_png(21)))
    not_image = await client.post("/api/convert", data=form(b"plain text, not a picture"))
    no_image = await client.post("/api/convert", data={"style": "hayao"})
    too_large = await client.post("/api/convert", data=form(tiny_png(22, size=160)))
    with_format = form(tiny_png(23))
    with_format.add_field("format", "tiff")
    unknown_format = await client.post("/api/convert", data=with_format)
    assert [r.status for r in (ok, not_image, no_image, too_large, unknown_format)] == [
        200,
        400,
        400,
        413,
        400,
    ]
    rows = await usage_rows(client)
    assert [(r["status"], r["error_kind"]) for r in rows] == [
        ("ok", None),
        ("error", "not_image"),
        ("error", "empty"),
        ("error", "too_large"),
        ("error", "unknown_format"),
    ]
    assert rows[0]["request_id"] == ok.headers["X-Animebot-Request-Id"]
    assert len({r["request_id"] for r in rows}) == len(rows)  # each its own request
