"""Load bench for the Telegram bot: simulated people send photos to the real bot.

    python bench/telegram_load.py [--users 200] [--photos 3] [--ramp 60] [--workers N]

Everything runs in this process on 127.0.0.1: the Bot API stand-in
(tests/standins/telegram_api.py), the real python-telegram-bot Application built by
`TelegramFrontEnd`, and a real `Runtime` (engine with the installed models, SQLite in a
temporary folder). Each user arrives at a random moment within `--ramp` seconds and sends
`--photos` photos at once (an album). Photos are a few shared test photos at varied sizes;
most carry a tiny per-request mark (distinct pixels, so no cache hit), some are exact repeats
of a few "popular" pictures (cache hits after the first).

Prints the update->reply time (push of the update to the moment the stand-in answered the
bot's sendPhoto) as p50/p95/p99, `lost` (requests never answered: must be 0), errors by kind,
cache hits, peak RSS of the whole process, and separately the median update->reply time of
a single 1280 px photo without faces and with one face (targets 500 ms / 700 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import random
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, this folder comes first on sys.path, where other benches (bench/service.py)
# would shadow the project's packages: look in the project root instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

from PIL import Image

from bot.telegram import TelegramFrontEnd
from models.pairs import shared_dir
from service.runtime import Runtime
from service.settings import Settings
from tests.standins.telegram_api import Call, TelegramStandIn, make_user

PHOTOS = shared_dir() / "data" / "photos"
LOAD_PHOTOS = (
    "street_shopfront.jpg",
    "city_tokyo_tower.jpg",
    "multi_face_group6_frontal.jpg",
    "portrait_fullbody_sitting.jpg",
    "landscape_autumn_lake_fuji.jpg",
    "face_single_lowlight.jpg",
)
SIDES = (480, 640, 960, 1280)
NO_FACE_PHOTO = "landscape_autumn_lake_fuji.jpg"
ONE_FACE_PHOTO = "face_single_lowlight.jpg"


def encode(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def scaled(name: str, side: int) -> Image.Image:
    with Image.open(PHOTOS / name) as img:
        rgb = img.convert("RGB")
    rgb.thumbnail((side, side))
    return rgb


def marked(img: Image.Image, n: int) -> bytes:
    """The picture with `n` written in black and white 8x8 blocks along its top edge: pixels
    no other request has (JPEG keeps blocks that coarse), so its own cache key."""
    copy = img.copy()
    for bit in range(20):
        colour = (255, 255, 255) if n >> bit & 1 else (0, 0, 0)
        copy.paste(colour, (bit * 8, 0, bit * 8 + 8, 8))
    return encode(copy)


@dataclass
class Sent:
    chat_id: int
    message_id: int
    pushed: float  # time.monotonic() just before the update was queued


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    by_file_id: int = 0


def is_answer(call: Call) -> bool:
    """A final answer: a result, or an error message (status messages are sent silently)."""
    if call.method in ("sendPhoto", "sendDocument"):
        return True
    return call.method == "sendMessage" and not call.params.get("disable_notification")


def collect(api: TelegramStandIn, sent: list[Sent], since: int) -> Outcome:
    answers: dict[tuple[int, int], Call] = {}
    for call in api.calls[since:]:
        key = (call.chat_id, call.reply_to_message_id)
        if is_answer(call) and call.ok and key not in answers:
            answers[key] = call  # type: ignore[index]
    outcome = Outcome()
    for item in sent:
        answer = answers.get((item.chat_id, item.message_id))
        if answer is None:
            outcome.lost += 1
        elif answer.method == "sendMessage":
            text = str(answer.params.get("text", ""))
            kind = (
                "busy"
                if "busy" in text
                else "rate_limited"
                if "a lot of photos" in text
                else text[:40]
            )
            outcome.errors[kind] = outcome.errors.get(kind, 0) + 1
        else:
            outcome.latencies_ms.append((answer.time - item.pushed) * 1000)
            outcome.by_file_id += "file_id" in answer.sources.values()
    return outcome


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def load_phase(
    api: TelegramStandIn, users: int, photos: int, ramp_s: float, timeout_s: float, seed: int
) -> tuple[Outcome, float, int]:
    rng = random.Random(seed)
    bases = [scaled(name, side) for name in LOAD_PHOTOS for side in SIDES]
    popular = [encode(scaled(name, 640)) for name in LOAD_PHOTOS[:3]]
    payloads: list[list[bytes]] = []
    n = 0
    for _ in range(users):
        album = []
        for _ in range(photos):
            n += 1
            if rng.random() < 0.15:
                album.append(rng.choice(popular))  # a repeat: cache hit after the first
            else:
                album.append(marked(rng.choice(bases), n))
        payloads.append(album)
    starts = sorted(rng.uniform(0, ramp_s) for _ in range(users))
    sent: list[Sent] = []
    since = api.mark()
    began = time.monotonic()

    async def person(index: int, at: float) -> None:
        await asyncio.sleep(max(0.0, began + at - time.monotonic()))  # arrival schedule
        user = make_user(100_000 + index, language_code=("en", "ru", "zh")[index % 3])
        for data in payloads[index]:
            pushed = time.monotonic()
            message = await api.send_photo(user, None, data, media_group_id=f"album-{index}")
            sent.append(Sent(user["id"], message["message_id"], pushed))

    await asyncio.gather(*(person(i, at) for i, at in enumerate(starts)))
    total = users * photos
    with contextlib.suppress(AssertionError):  # what is not answered is counted as lost
        await api.wait_for(None, is_answer, count=total, timeout=timeout_s, since=since)
    elapsed = time.monotonic() - began
    return collect(api, sent, since), elapsed, total


async def single_phase(api: TelegramStandIn, runs: int) -> dict[str, float]:
    """Median update->reply of one 1280 px photo at a time (distinct pixels each run)."""
    cases = {
        "no faces in the photo (face touch-up on)": (NO_FACE_PHOTO, True),
        "no faces in the photo (face touch-up off)": (NO_FACE_PHOTO, False),
        "one face": (ONE_FACE_PHOTO, True),
    }
    results: dict[str, float] = {}
    for index, (label, (name, faces)) in enumerate(cases.items()):
        user = make_user(900_000 + index, language_code="en")
        if not faces:
            since = api.mark()
            await api.send_text(user, None, "/faces")
            await api.wait_for("sendMessage", lambda c, u=user: c.chat_id == u["id"], since=since)
        base = scaled(name, 1280)
        times = []
        for run in range(runs):
            data = marked(base, 50_000 + index * 100 + run)
            since = api.mark()
            pushed = time.monotonic()
            message = await api.send_photo(user, None, data)
            (answer,) = await api.wait_for(
                "sendPhoto",
                lambda c, m=message: (
                    c.reply_to_message_id == m["message_id"] and c.chat_id == m["chat"]["id"]
                ),
                since=since,
                timeout=60,
            )
            times.append((answer.time - pushed) * 1000)
        results[label] = statistics.median(times)
    return results


async def main_async(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="animebot-bench-") as tmp:
        async with TelegramStandIn() as api:
            values: dict[str, Any] = {
                "data_dir": Path(tmp),
                "telegram_token": api.token,
                "telegram_api_url": api.base_url,
                "queue_max": args.queue_max,
            }
            if args.workers:
                values["workers"] = args.workers
            settings = Settings(**values)
            runtime = await Runtime.start(settings)
            front = TelegramFrontEnd(runtime)
            try:
                await front.start()
                outcome, elapsed, total = await load_phase(
                    api, args.users, args.photos, args.ramp, args.timeout, args.seed
                )
                summary = await runtime.service.stats(days=1)
                single = await single_phase(api, args.single_runs)
            finally:
                await front.stop()
                await runtime.stop()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ok = outcome.latencies_ms
    print(
        f"telegram load: {args.users} users x {args.photos} photos = {total} requests, "
        f"{settings.workers} workers, arrivals over {args.ramp:g} s"
    )
    print(f"answered: {total - outcome.lost}/{total}   lost: {outcome.lost}")
    errors = sum(outcome.errors.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(outcome.errors.items()))
    print(f"results: {len(ok)}   errors: {errors}" + (f" ({detail})" if detail else ""))
    if ok:
        print(
            f"update->reply: p50 {pct(ok, 50):.0f} ms   p95 {pct(ok, 95):.0f} ms   "
            f"p99 {pct(ok, 99):.0f} ms   max {max(ok):.0f} ms"
        )
    print(f"cache hits: {summary.cache_hits} ({outcome.by_file_id} sent by file_id, no upload)")
    print(f"throughput: {len(ok) / elapsed:.1f} results/s over {elapsed:.0f} s")
    print(f"peak RSS: {peak_mb:.0f} MB (one process: bot, runtime and the Bot API stand-in)")
    print(f"single 1280 px photo, median of {args.single_runs} (update->reply):")
    targets = {"no faces in the photo (face touch-up on)": 500, "one face": 700}
    for label, ms in single.items():
        target = targets.get(label)
        suffix = f"   target {target} ms" if target else ""
        print(f"  {label + ':':<44}{ms:6.0f} ms{suffix}")
    return 0 if outcome.lost == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--photos", type=int, default=3, help="photos per user (an album)")
    parser.add_argument("--ramp", type=float, default=60.0, help="users arrive within this (s)")
    parser.add_argument("--workers", type=int, default=0, help="default: ANIMEBOT_WORKERS/CPUs")
    parser.add_argument("--queue-max", type=int, default=1000, help="service queue bound")
    parser.add_argument("--single-runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900.0, help="wait for answers (s)")
    parser.add_argument("--seed", type=int, default=0)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
