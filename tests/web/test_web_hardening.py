"""The web page's defences (issue 15, items 7-9), each attack reproduced through HTTP against a
real Runtime: malformed forms, unknown formats, forged visitor cookies, guessed admin tokens,
copied session cookies, forwarded addresses, cross-site posts and the Server header."""

from __future__ import annotations

import asyncio
import re
import secrets
from ipaddress import ip_network
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

import i18n
from tests.web.helpers import MakeClient, form, tiny_png
from web.admin_auth import ATTEMPT_BURST, DEVICE_COOKIE
from web.app import STATE, WebState
from web.forms import MAX_FIELDS
from web.routes_admin import ADMIN_COOKIE
from web.visitor import ISSUE_BURST, UID_COOKIE

TOKEN = "s3cret-admin-token-for-tests"
Client = TestClient[Any, Any]
PROXY = (ip_network("127.0.0.1/32"),)  # the test client connects from 127.0.0.1


def state_of(client: Client) -> WebState:
    assert client.app is not None
    state: WebState = client.app[STATE]
    return state


async def usage_kinds(client: Client) -> list[str | None]:
    rows = await state_of(client).runtime.db._sql.fetchall("SELECT error_kind FROM usage")
    return [r["error_kind"] for r in rows]


# -- item 7: forms --------------------------------------------------------------------------

BOUNDARY = "x"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def part(headers: str, body: bytes = b"abc") -> bytes:
    return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + body + b"\r\n"


MALFORMED = {
    "garbage": b"--x\r\ngarbage",
    "long_filename": part(
        'Content-Disposition: form-data; name="image"; filename="' + "a" * 9000 + '.jpg"'
    )
    + b"--x--\r\n",
    "huge_header": part(
        'Content-Disposition: form-data; name="image"; filename="a.jpg"\r\nX-Big: '
        + "a" * (1024 * 1024)
    )
    + b"--x--\r\n",
    "no_final_boundary": part('Content-Disposition: form-data; name="style"', b"hayao"),
}


@pytest.mark.parametrize("path", ["/api/convert", "/admin/login"])
@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_forms_are_a_translated_400(
    make_client: MakeClient, path: str, case: str
) -> None:
    client = await make_client(admin_token=TOKEN)
    headers = {**MULTIPART, "Accept-Language": "ru"}
    response = await client.post(path, data=MALFORMED[case], headers=headers)
    assert response.status == 400, await response.text()
    body = await response.json()
    assert body == {"code": "bad_form", "message": i18n.t("error.bad_form", "ru")}


@pytest.mark.parametrize("path", ["/api/convert", "/admin/login"])
@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
async def test_too_many_fields_says_so(make_client: MakeClient, path: str, encoding: str) -> None:
    client = await make_client(admin_token=TOKEN)
    fields = [(f"f{i}", "v") for i in range(10_000)]
    data: Any
    if encoding == "multipart":
        data = aiohttp.FormData(fields)
        if path == "/api/convert":
            data.add_field("image", tiny_png(1), filename="a.png", content_type="image/png")
    else:
        data = [*fields, ("token", TOKEN)]
    response = await client.post(path, data=data, headers={"Accept-Language": "zh"})
    assert response.status == 400, await response.text()
    body = await response.json()
    assert body["code"] == "too_many_fields"
    assert body["message"] == i18n.t("error.too_many_fields", "zh", max=MAX_FIELDS)


async def test_an_unknown_format_is_refused(make_client: MakeClient) -> None:
    client = await make_client()
    data = form(tiny_png(2))
    data.add_field("format", "bmp")
    response = await client.post("/api/convert", data=data)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "unknown_format"
    assert "bmp" in body["message"] and "jpeg, png, webp" in body["message"]
    assert await usage_kinds(client) == ["unknown_format"]  # a row for every outcome
    assert UID_COOKIE in response.cookies  # a refusal hands out the cookie it counted
    data = form(tiny_png(2))
    data.add_field("format", "PNG")
    ok = await client.post("/api/convert", data=data)
    assert ok.status == 200 and ok.content_type == "image/png"


async def test_an_image_sent_without_a_file_name_still_converts(make_client: MakeClient) -> None:
    client = await make_client()
    body = part(
        'Content-Disposition: form-data; name="image"\r\nContent-Type: application/octet-stream',
        tiny_png(3),
    )
    response = await client.post("/api/convert", data=body + b"--x--\r\n", headers=MULTIPART)
    assert response.status == 200


# -- item 8: only a cookie the server signed is a person -----------------------------------


async def test_invented_cookies_do_not_make_new_people(make_client: MakeClient) -> None:
    client = await make_client(rate_burst=3, rate_per_minute=1.0)
    statuses = []
    for i in range(12):
        client.session.cookie_jar.clear()
        invented = {UID_COOKIE: secrets.token_urlsafe(18)}
        response = await client.post("/api/convert", data=form(tiny_png(10 + i)), cookies=invented)
        statuses.append(response.status)
    assert statuses == [200] * 3 + [429] * 9  # one allowance: the address's


async def test_signed_cookies_are_people_and_altered_ones_are_not(make_client: MakeClient) -> None:
    client = await make_client(rate_burst=2, rate_per_minute=1.0)
    page = await client.get("/")
    cookie = page.cookies[UID_COOKIE].value
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,64}\.[0-9a-f]{32}", cookie)
    for i in range(2):
        assert (await client.post("/api/convert", data=form(tiny_png(30 + i)))).status == 200
    assert (await client.post("/api/convert", data=form(tiny_png(32)))).status == 429
    # Another browser (own signed cookie) is another person, even from the same address.
    client.session.cookie_jar.clear()
    other = (await client.get("/")).cookies[UID_COOKIE].value
    assert (await client.post("/api/convert", data=form(tiny_png(33)))).status == 200
    # The first cookie with its signature altered is nobody's: the cookie-less allowance.
    client.session.cookie_jar.clear()
    altered = cookie[:-1] + ("1" if cookie[-1] == "0" else "0")
    statuses = [
        (
            await client.post(
                "/api/convert", data=form(tiny_png(34 + i)), cookies={UID_COOKIE: altered}
            )
        ).status
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert other != cookie


async def test_fresh_cookies_are_handed_out_sparingly(make_client: MakeClient) -> None:
    client = await make_client()
    issued = []
    for _ in range(ISSUE_BURST + 5):
        client.session.cookie_jar.clear()
        issued.append(UID_COOKIE in (await client.get("/")).cookies)
    assert issued == [True] * ISSUE_BURST + [False] * 5  # no harvest of new identities


# -- item 9: the client address behind a proxy ---------------------------------------------


async def convert_from(client: Client, seed: int, forwarded: str) -> int:
    client.session.cookie_jar.clear()
    response = await client.post(
        "/api/convert", data=form(tiny_png(seed)), headers={"X-Forwarded-For": forwarded}
    )
    return response.status


async def test_forwarded_addresses_count_only_from_trusted_proxies(
    make_client: MakeClient,
) -> None:
    direct = await make_client(rate_burst=1, rate_per_minute=1.0)
    assert await convert_from(direct, 40, "198.51.100.1") == 200
    assert await convert_from(direct, 41, "198.51.100.2") == 429  # a forged header: ignored

    proxied = await make_client(rate_burst=1, rate_per_minute=1.0, trusted_proxies=PROXY)
    assert await convert_from(proxied, 42, "198.51.100.1") == 200
    assert await convert_from(proxied, 43, "198.51.100.2") == 200  # another client
    # What the client wrote itself (left of what the proxy appended) changes nothing.
    assert await convert_from(proxied, 44, "203.0.113.9, 198.51.100.1") == 429


# -- item 9: the admin token ---------------------------------------------------------------


async def test_wrong_bearer_tokens_are_rate_limited(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    statuses = []
    for i in range(ATTEMPT_BURST + 3):
        headers = {"Authorization": f"Bearer guess-{i}"}
        statuses.append((await client.get("/api/admin/stats", headers=headers)).status)
    assert statuses == [401] * ATTEMPT_BURST + [429] * 3
    locked = await client.get("/api/admin/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert locked.status == 429  # no oracle while locked
    assert (await locked.json())["code"] == "too_many_attempts"
    assert int(locked.headers["Retry-After"]) >= 1
    page = await client.get("/admin", headers={"Authorization": "Bearer guess"})
    assert page.status == 429 and int(page.headers["Retry-After"]) >= 1


async def sign_in(client: Client, **headers: str) -> aiohttp.ClientResponse:
    return await client.post(
        "/admin/login", data={"token": TOKEN}, headers=headers, allow_redirects=False
    )


async def test_signing_out_revokes_the_session(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    assert (await sign_in(client)).status == 303
    copied = next(c.value for c in client.session.cookie_jar if c.key == ADMIN_COOKIE)
    assert (await client.get("/api/admin/stats")).status == 200
    assert (await client.post("/admin/logout", allow_redirects=False)).status == 303
    client.session.cookie_jar.clear()
    for path in ("/api/admin/stats", "/admin"):
        response = await client.get(path, cookies={ADMIN_COOKIE: copied})
        assert response.status == 401, path


async def test_guessing_from_the_owners_address_does_not_lock_the_owner_out(
    make_client: MakeClient,
) -> None:
    client = await make_client(admin_token=TOKEN)
    assert (await sign_in(client)).status == 303  # the owner's browser, earlier
    device = next(c.value for c in client.session.cookie_jar if c.key == DEVICE_COOKIE)
    await client.post("/admin/logout")
    client.session.cookie_jar.clear()
    # Someone on the same network guesses until the address is locked.
    statuses = [
        (await client.post("/admin/login", data={"token": f"guess{i}"})).status
        for i in range(ATTEMPT_BURST + 1)
    ]
    assert statuses == [401] * ATTEMPT_BURST + [429]
    assert (await sign_in(client)).status == 429  # a stranger with the right token waits
    # The owner's browser is counted on its own: the right token still works.
    owner = await client.post(
        "/admin/login",
        data={"token": TOKEN},
        cookies={DEVICE_COOKIE: device},
        allow_redirects=False,
    )
    assert owner.status == 303
    # A forged device cookie is no way around the lock.
    client.session.cookie_jar.clear()
    forged = await client.post(
        "/admin/login",
        data={"token": TOKEN},
        cookies={DEVICE_COOKIE: device[:-1] + ("1" if device[-1] == "0" else "0")},
        allow_redirects=False,
    )
    assert forged.status == 429


async def test_sign_in_failures_are_counted_per_forwarded_client(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN, trusted_proxies=PROXY)
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    for i in range(ATTEMPT_BURST + 1):
        await client.post("/admin/login", data={"token": f"guess{i}"}, headers=attacker)
    assert (await sign_in(client, **attacker)).status == 429
    owner = {"X-Forwarded-For": "198.51.100.7"}
    assert (await sign_in(client, **owner)).status == 303
    bearer = {**owner, "Authorization": f"Bearer {TOKEN}"}
    assert (await client.get("/api/admin/stats", headers=bearer)).status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://sub.evil.example"},
    ],
)
async def test_cross_site_sign_in_and_sign_out_are_refused(
    make_client: MakeClient, headers: dict[str, str]
) -> None:
    client = await make_client(admin_token=TOKEN)
    refused = await sign_in(client, **headers)
    assert refused.status == 403
    assert (await refused.json())["code"] == "cross_site"
    assert ADMIN_COOKIE not in refused.cookies
    origin = str(client.make_url("/")).rstrip("/")
    same = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
    assert (await sign_in(client, **same)).status == 303
    out = await client.post("/admin/logout", headers=headers, allow_redirects=False)
    assert out.status == 403
    assert (await client.get("/api/admin/stats")).status == 200  # still signed in
    out = await client.post("/admin/logout", headers=same, allow_redirects=False)
    assert out.status == 303
    # What Chromium really sends for the page's own form under Referrer-Policy: no-referrer.
    browser_form = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    assert (await sign_in(client, **browser_form)).status == 303


async def test_the_dashboard_keeps_the_language_of_the_sign_in_page(
    make_client: MakeClient,
) -> None:
    client = await make_client(admin_token=TOKEN)
    login_page = await client.get("/admin?lang=ru&days=7")
    assert login_page.status == 401
    html = await login_page.text()
    assert '<html lang="ru">' in html
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))
    dashboard = await client.post("/admin/login", data={**hidden, "token": TOKEN})
    assert dashboard.status == 200
    text = await dashboard.text()
    assert '<html lang="ru">' in text and 'id="stats"' in text
    assert i18n.t("web.admin_title", "ru") in text


# -- item 9: the Server header -------------------------------------------------------------


async def test_no_version_in_the_server_header(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    responses = [
        await client.get("/"),
        await client.get("/static/style.css"),
        await client.get("/nowhere"),
        await client.get("/api/nowhere"),
        await client.post("/api/convert", data=form(None)),
        await sign_in(client),
    ]
    assert [r.headers.get("Server") for r in responses] == ["animebot"] * len(responses)
    # aiohttp's own answer to a request it cannot even parse.
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(b"GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await reader.read(4096)
    writer.close()
    assert re.match(rb"HTTP/1\.[01] 400 ", head) and b"\r\nServer: animebot\r\n" in head
    assert b"aiohttp" not in head and b"Python" not in head
