"""Memory bench: the resident memory of a real `animebot serve` process under load.

    python bench/memory.py [--concurrency 16] [--web-12mp 32] [--web-1280 32]
                           [--telegram-1280 48] [--telegram-12mp 16] [--settle 8]
                           [--env NAME=VALUE ...]

Starts `animebot serve` as a subprocess (web page on a free port, Telegram bot pointed at the
Bot API stand-in of tests/standins/telegram_api.py, which runs in *this* process, so its copies
of every image are not counted), with default settings apart from the ports and a temporary
data folder. Then, one phase after the other, keeps `--concurrency` requests in flight:

- web, 12 MP JPEG photos (2828x4243 and 3000x4000, upscaled from two shared photos with cv2),
  `POST /api/convert` as the page sends it, by 16 people (cookies the page issued);
- web, 1280 px photos, the same way;
- Telegram, 1280 px photos (as Telegram sends photos), 16 people each waiting for their reply
  before sending the next;
- Telegram, 12 MP photos sent as files (full resolution; no `ANIMEBOT_MAX_SIDE` below 4096).

Every request has pixels no other request has (a mark on its top edge), so each is a real
conversion, not a cache hit. RSS is the server process's own, read from /proc/PID/status:
the peak of each phase is VmHWM (the kernel's high-water mark, reset between phases by
writing 5 to /proc/PID/clear_refs), "after" is VmRSS `--settle` seconds after the phase's
last answer (the engine gives memory back 5 s after its last conversion). Prints the idle
baseline (after start-up and warm-up, same run), then per phase the time, the peak and
after-load RSS (web phases: also the engine's median time per photo), the overall peak, and
the targets (peak <= 600 MB, after the load <= 250 MB); exits 1 if a request went unanswered.
`--env` passes extra settings to the server (for comparisons, e.g. `--env
MALLOC_ARENA_MAX=2`). Linux only; run it with the project's environment
(`.venv/bin/python bench/memory.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, this folder comes first on sys.path, where other benches (bench/service.py)
# would shadow the project's packages: look in the project root instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import aiohttp
import cv2
import numpy as np

from models.pairs import shared_dir
from tests.standins.telegram_api import Call, TelegramStandIn, make_user

PHOTOS = shared_dir() / "data" / "photos"
SCENE = "landscape_autumn_lake_fuji.jpg"  # no faces
FACES = "multi_face_three_men_vintage.jpg"  # three faces
TWELVE_MP = 12_000_000
PEAK_TARGET_MB = 600
AFTER_TARGET_MB = 250


# -- inputs --------------------------------------------------------------------------------------


def load(name: str) -> np.ndarray:
    img = cv2.imread(str(PHOTOS / name), cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {PHOTOS / name} (set ANIMEBOT_SHARED to ../shared)")
    return np.asarray(img)


def resized(img: np.ndarray, *, pixels: int | None = None, side: int | None = None) -> np.ndarray:
    h, w = img.shape[:2]
    scale = (pixels / (h * w)) ** 0.5 if pixels else (side or max(h, w)) / max(h, w)
    size = (round(w * scale), round(h * scale))
    interpolation = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    return np.asarray(cv2.resize(img, size, interpolation=interpolation))


def marked_jpeg(img: np.ndarray, n: int) -> bytes:
    """`img` with `n` written as 16x16 black and white blocks along its top edge (pixels no
    other request has, which JPEG keeps), encoded as a quality-90 JPEG."""
    copy = img.copy()
    for bit in range(24):
        copy[0:16, bit * 16 : bit * 16 + 16] = 255 if n >> bit & 1 else 0
    ok, buf = cv2.imencode(".jpg", copy, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def payloads(count: int, bases: list[np.ndarray], start: int) -> list[bytes]:
    return [marked_jpeg(bases[i % len(bases)], start + i) for i in range(count)]


# -- the server process --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def mb(kb: int) -> float:
    return kb / 1024


@dataclass
class Phase:
    name: str
    requests: int
    answered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    peak_kb: int = 0
    after_kb: int = 0
    seconds: float = 0.0
    compute_ms: list[float] = field(default_factory=list)  # web: the engine's time per photo


async def wait_ready(url: str, proc: asyncio.subprocess.Process, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise SystemExit(f"the server exited with {proc.returncode} while starting")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)  # a bench polling a subprocess, not a test
    raise SystemExit(f"the server was not ready within {timeout_s:.0f} s")


# -- load ----------------------------------------------------------------------------------------


async def run_bounded(
    jobs: list[Callable[[], Awaitable[str | None]]], concurrency: int, phase: Phase
) -> None:
    """Run `jobs` keeping `concurrency` in flight; each returns None or an error kind."""
    queue = list(reversed(jobs))

    async def lane() -> None:
        while queue:
            error = await queue.pop()()
            if error is None:
                phase.answered += 1
            else:
                phase.errors[error] = phase.errors.get(error, 0) + 1

    await asyncio.gather(*(lane() for _ in range(concurrency)))


async def web_people(url: str, count: int) -> list[aiohttp.ClientSession]:
    """`count` browsers, each with the cookie the page gave it (one person each)."""
    sessions = []
    for _ in range(count):
        http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies from 127.0.0.1
            timeout=aiohttp.ClientTimeout(total=900),
        )
        async with http.get(url) as response:
            await response.read()
        sessions.append(http)
    return sessions


async def web_phase(
    url: str, people: list[aiohttp.ClientSession], data: list[bytes], concurrency: int, name: str
) -> Phase:
    phase = Phase(name, len(data))

    def job(i: int, body: bytes) -> Callable[[], Awaitable[str | None]]:
        async def send() -> str | None:
            form = aiohttp.FormData()
            form.add_field("image", body, filename=f"photo{i}.jpg", content_type="image/jpeg")
            form.add_field("faces", "0")
            form.add_field("faces", "1")  # the page's checkbox, on by default
            form.add_field("format", "jpeg")
            async with people[i % len(people)].post(url + "api/convert", data=form) as response:
                await response.read()
                if response.status == 200:
                    phase.compute_ms.append(float(response.headers["X-Animebot-Compute-Ms"]))
                    return None
                return f"HTTP {response.status}"

        return send

    await run_bounded([job(i, body) for i, body in enumerate(data)], concurrency, phase)
    return phase


def is_answer(call: Call) -> bool:
    if not call.ok:
        return False
    if call.method in ("sendPhoto", "sendDocument"):
        return True
    return call.method == "sendMessage" and not call.params.get("disable_notification")


async def telegram_phase(
    api: TelegramStandIn,
    data: list[bytes],
    concurrency: int,
    name: str,
    *,
    as_file: bool,
    first_user: int,
) -> Phase:
    phase = Phase(name, len(data))
    users = [make_user(first_user + i, language_code="en") for i in range(concurrency)]
    lanes = {id(u): 0 for u in users}

    def job(i: int, body: bytes) -> Callable[[], Awaitable[str | None]]:
        async def send() -> str | None:
            user = users[i % len(users)]
            lanes[id(user)] += 1
            since = api.mark()
            if as_file:
                message = await api.send_document(user, None, body, f"photo{i}.jpg", "image/jpeg")
            else:
                message = await api.send_photo(user, None, body)
            chat, message_id = message["chat"]["id"], message["message_id"]
            (answer,) = await api.wait_for(
                None,
                lambda c: (
                    is_answer(c) and c.chat_id == chat and c.reply_to_message_id == message_id
                ),
                since=since,
                timeout=900,
            )
            if answer.method == "sendMessage":
                return "message: " + str(answer.params.get("text", ""))[:50]
            return None

        return send

    # one lane per person: each waits for their reply before sending the next photo
    await run_bounded([job(i, body) for i, body in enumerate(data)], concurrency, phase)
    return phase


# -- main ----------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    scene, faces = load(SCENE), load(FACES)
    big = [resized(scene, pixels=TWELVE_MP), resized(faces, pixels=TWELVE_MP)]
    small = [resized(scene, side=1280), resized(faces, side=1280)]
    print(
        f"inputs: 12 MP {big[0].shape[1]}x{big[0].shape[0]} and {big[1].shape[1]}x"
        f"{big[1].shape[0]}, 1280 px {small[0].shape[1]}x{small[0].shape[0]} and "
        f"{small[1].shape[1]}x{small[1].shape[0]} (JPEG q90, a distinct mark on each)"
    )
    inputs = {
        "web 12 MP": payloads(args.web_12mp, big, 1_000),
        "web 1280 px": payloads(args.web_1280, small, 2_000),
        "telegram 1280 px": payloads(args.telegram_1280, small, 3_000),
        "telegram 12 MP file": payloads(args.telegram_12mp, big, 4_000),
    }
    sizes = {k: sum(map(len, v)) / max(1, len(v)) / 1e6 for k, v in inputs.items() if v}
    print("mean upload: " + ", ".join(f"{k} {v:.2f} MB" for k, v in sizes.items()))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory(prefix="animebot-memory-") as tmp:
        async with TelegramStandIn() as api:
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "ANIMEBOT_DATA": tmp,
                "ANIMEBOT_HOST": "127.0.0.1",
                "ANIMEBOT_PORT": str(port),
                "ANIMEBOT_LOG_LEVEL": "WARNING",
                "TELEGRAM_TOKEN": api.token,
                "TELEGRAM_API_URL": api.base_url,
            }
            for item in args.env:
                name, _, value = item.partition("=")
                env[name] = value
            for name in ("ANIMEBOT_CONFIG", "DISCORD_TOKEN"):
                if name not in dict(v.partition("=")[::2] for v in args.env):
                    env.pop(name, None)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "import sys; from cli.main import main; sys.exit(main(['serve']))",
                cwd=ROOT,
                env=env,
            )
            try:
                return await measure(args, api, proc, url, inputs)
            finally:
                await api.release_long_polls()  # so the bot's last getUpdates returns
                if proc.returncode is None:
                    proc.terminate()
                    try:
                        await asyncio.wait_for(proc.wait(), 60)
                    except TimeoutError:
                        proc.kill()
                        await proc.wait()


async def measure(
    args: argparse.Namespace,
    api: TelegramStandIn,
    proc: asyncio.subprocess.Process,
    url: str,
    inputs: dict[str, list[bytes]],
) -> int:
    pid = proc.pid
    await wait_ready(url, proc, args.start_timeout)
    await api.wait_polling(timeout=60)
    await asyncio.sleep(args.settle)
    baseline = rss_kb(pid)
    print(f"server pid {pid}: idle after start {mb(baseline):.0f} MB")
    people = await web_people(url, args.concurrency)
    phases: list[Phase] = []
    overall = baseline
    try:
        for name, data in inputs.items():
            if not data:
                continue
            reset_peak(pid)
            began = time.monotonic()
            if name.startswith("web"):
                phase = await web_phase(url, people, data, args.concurrency, name)
            else:
                phase = await telegram_phase(
                    api,
                    data,
                    args.concurrency,
                    name,
                    as_file="file" in name,
                    first_user=100_000 * (len(phases) + 1),
                )
            phase.seconds = time.monotonic() - began
            phase.peak_kb = rss_kb(pid, "VmHWM")
            await asyncio.sleep(args.settle)  # a burst is over: what does the process keep?
            phase.after_kb = rss_kb(pid)
            overall = max(overall, phase.peak_kb)
            phases.append(phase)
            errors = ", ".join(f"{k}: {v}" for k, v in sorted(phase.errors.items()))
            compute = sorted(phase.compute_ms)
            median = f"   engine {compute[len(compute) // 2]:.0f} ms/photo" if compute else ""
            print(
                f"{name:<22} {phase.answered}/{phase.requests} converted in "
                f"{phase.seconds:5.1f} s at {args.concurrency} in flight   peak "
                f"{mb(phase.peak_kb):5.0f} MB   after {mb(phase.after_kb):5.0f} MB{median}"
                + (f"   errors: {errors}" if errors else "")
            )
    finally:
        for http in people:
            await http.close()
    after = phases[-1].after_kb if phases else baseline
    print(
        f"server RSS: idle {mb(baseline):.0f} MB   peak {mb(overall):.0f} MB "
        f"(target <= {PEAK_TARGET_MB})   after the load {mb(after):.0f} MB "
        f"(target <= {AFTER_TARGET_MB})"
    )
    failed = any(p.answered < p.requests for p in phases)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--web-12mp", type=int, default=32)
    parser.add_argument("--web-1280", type=int, default=32)
    parser.add_argument("--telegram-1280", type=int, default=48)
    parser.add_argument("--telegram-12mp", type=int, default=16)
    parser.add_argument("--settle", type=float, default=8.0, help="idle seconds before 'after'")
    parser.add_argument("--start-timeout", type=float, default=120.0)
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="server environment"
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
