"""The page and the dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by
the Python playwright package; no browser download). Skipped when Chromium is absent.

Set ANIMEBOT_SCREENSHOTS=/some/dir to keep the screenshots (desktop and phone) for a look.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import i18n
from service.runtime import Runtime
from tests.web.helpers import PHOTO, decode
from web import WebFrontEnd

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")

CHROMIUM = os.environ.get("ANIMEBOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"Chromium not found at {CHROMIUM} (make browser, or apt-get install chromium)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TOKEN = "browser-test-admin-token"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 90_000  # a conversion on a busy 2-core machine


@pytest.fixture
async def site(make_runtime: Callable[..., Awaitable[Runtime]]) -> AsyncIterator[WebFrontEnd]:
    runtime = await make_runtime(admin_token=TOKEN)
    front = WebFrontEnd(runtime, host="127.0.0.1", port=0)
    await front.start()
    yield front
    await front.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield instance
        await instance.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("ANIMEBOT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def new_page(browser: Any, viewport: dict[str, int], **options: Any) -> tuple[Any, list[str]]:
    """A page in a fresh context, and the list its uncaught script errors land in."""
    context = await browser.new_context(viewport=viewport, accept_downloads=True, **options)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


async def convert_on_page(page: Any, photo: Path) -> None:
    await page.set_input_files("#image", str(photo))
    await page.locator("#before").wait_for(state="visible")
    await page.click("#convert")
    await page.locator("#after").wait_for(state="visible", timeout=WAIT_MS)


async def boxes(page: Any, *selectors: str) -> list[dict[str, float]]:
    """Page coordinates of elements, read at one instant (the page may be scrolling)."""
    script = """(selectors) => selectors.map((s) => {
        const r = document.querySelector(s).getBoundingClientRect();
        return {x: r.left + window.scrollX, y: r.top + window.scrollY,
                width: r.width, height: r.height};
    })"""
    result: list[dict[str, float]] = await page.evaluate(script, list(selectors))
    return result


async def no_horizontal_scroll(page: Any) -> bool:
    width, inner = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return bool(width <= inner)


async def test_upload_convert_and_download(
    site: WebFrontEnd, browser: Any, photos_dir: Path, shots: Path
) -> None:
    page, errors = await new_page(browser, DESKTOP)
    response = await page.goto(site.url)
    assert response.status == 200
    await page.screenshot(path=str(shots / "web-desktop-empty.png"), full_page=True)
    await convert_on_page(page, photos_dir / PHOTO)
    natural = await page.evaluate(
        "['after', 'before'].map((id) => document.getElementById(id).naturalWidth)"
    )
    assert natural[0] > 0 and natural[1] > 0
    assert await page.get_attribute("#after", "alt") == i18n.t(
        "web.result_alt", "en", style=i18n.t("style.hayao", "en")
    )
    took = await page.text_content("#took")
    assert took and took.startswith("Done in")
    # desktop: before and after side by side
    before, after = await boxes(page, "#before-pane", "#after-pane")
    assert abs(before["y"] - after["y"]) < 2 and after["x"] >= before["x"] + before["width"]
    await page.screenshot(path=str(shots / "web-desktop-result.png"), full_page=True)

    async with page.expect_download() as info:
        await page.click("#download")
    download = await info.value
    assert download.suggested_filename == "face_single_lowlight_hayao.jpg"
    saved = Path(await download.path())
    image = decode(await asyncio.to_thread(saved.read_bytes))
    assert image.format == "JPEG" and image.width == natural[0]
    assert errors == []


async def test_phone_shows_before_and_after_stacked(
    site: WebFrontEnd, browser: Any, photos_dir: Path, shots: Path
) -> None:
    page, errors = await new_page(browser, PHONE, is_mobile=True, has_touch=True)
    await page.goto(site.url)
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(shots / "web-phone-empty.png"), full_page=True)
    await convert_on_page(page, photos_dir / "street_shopfront.jpg")
    before, after = await boxes(page, "#before-pane", "#after-pane")
    assert after["y"] >= before["y"] + before["height"]  # stacked, original first
    assert abs(before["x"] - after["x"]) < 2
    assert before["width"] <= PHONE["width"] and after["width"] <= PHONE["width"]
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(shots / "web-phone-result.png"), full_page=True)
    assert errors == []


async def test_errors_are_shown_translated(site: WebFrontEnd, browser: Any, edge_dir: Path) -> None:
    page, errors = await new_page(browser, DESKTOP)
    await page.goto(site.url + "?lang=ru")
    assert await page.get_attribute("html", "lang") == "ru"
    assert await page.text_content("h1") == i18n.t("web.heading", "ru")
    await page.click("#convert")  # nothing chosen yet
    assert await page.text_content("#error") == i18n.t("web.no_photo", "ru")
    await page.set_input_files("#image", str(edge_dir / "not_an_image.jpg"))
    await page.click("#convert")
    await page.locator("#convert:not([disabled])").wait_for()
    error = page.locator("#error")
    await error.wait_for(state="visible")
    assert await error.text_content() == i18n.t("error.not_image", "ru")
    assert await page.locator("#after").is_hidden()
    assert errors == []


async def test_dashboard_needs_the_token_and_draws_charts(
    site: WebFrontEnd, browser: Any, photos_dir: Path, shots: Path
) -> None:
    page, errors = await new_page(browser, DESKTOP)
    await page.goto(site.url)
    await convert_on_page(page, photos_dir / PHOTO)

    response = await page.goto(site.url + "admin")
    assert response.status == 401
    assert await page.locator("#stats").count() == 0
    await page.fill("#token", "not the token")
    await page.click("form.login button[type=submit]")
    await page.locator("#login-error").wait_for(state="visible")
    assert await page.text_content("#login-error") == i18n.t("web.admin_wrong_token", "en")
    await page.screenshot(path=str(shots / "web-admin-login.png"), full_page=True)

    await page.fill("#token", TOKEN)
    await page.click("form.login button[type=submit]")
    await page.locator("#chart-days svg").wait_for()
    assert await page.text_content("#t-ok") == "1"
    assert await page.locator("#chart-days svg rect").count() >= 1
    assert await page.locator("#chart-styles svg rect").count() >= 1
    assert await page.locator("#chart-latency svg rect").count() == 4
    cookies = await page.context.cookies()
    admin = next(c for c in cookies if c["name"] == "animebot_admin")
    assert admin["httpOnly"] and admin["sameSite"] == "Strict"
    assert TOKEN not in admin["value"]
    await page.screenshot(path=str(shots / "web-admin-desktop.png"), full_page=True)

    await page.set_viewport_size(PHONE)
    await page.reload()
    await page.locator("#chart-days svg").wait_for()
    assert await no_horizontal_scroll(page)
    await page.screenshot(path=str(shots / "web-admin-phone.png"), full_page=True)
    assert errors == []


async def test_a_clip_shows_progress_and_plays(
    make_runtime: Callable[..., Awaitable[Runtime]],
    browser: Any,
    photos_dir: Path,
    shots: Path,
    tmp_path: Path,
) -> None:
    from tests.clipgen import make_mp4

    clip = make_mp4(
        tmp_path / "walk.mp4", photos_dir / "street_shopfront.jpg", seconds=3, fps=10, audio=True
    )
    # one frame per fair-queue turn, one worker: progress moves in 30 small steps
    runtime = await make_runtime(workers=1, clip_photo_pixels=320 * 240)
    site = WebFrontEnd(runtime, host="127.0.0.1", port=0)
    await site.start()
    page, errors = await new_page(browser, DESKTOP)
    await page.goto(site.url)
    # note every percentage the bar shows, whenever it changes
    await page.evaluate(
        """() => {
        window.seenProgress = [];
        const bar = document.getElementById("clip-progress");
        new MutationObserver(() => {
            if (!bar.hidden) window.seenProgress.push(bar.value);
        }).observe(bar, {attributes: true});
    }"""
    )
    await page.set_input_files("#image", str(clip))
    await page.locator("#before-video").wait_for(state="visible")
    await page.click("#convert")
    await page.locator("#after-video").wait_for(state="visible", timeout=WAIT_MS)
    size = await page.evaluate(
        """() => new Promise((done) => {
        const v = document.getElementById("after-video");
        const report = () => done([v.videoWidth, v.videoHeight, v.duration]);
        if (v.readyState >= 1) report(); else v.addEventListener("loadedmetadata", report);
    })"""
    )
    assert size[0] == 320 and size[1] == 240 and abs(size[2] - 3.0) < 0.2
    assert await page.evaluate("window.seenProgress.length") > 0
    await page.screenshot(path=str(shots / "web-clip-result.png"), full_page=True)
    assert errors == []
    await site.stop()
