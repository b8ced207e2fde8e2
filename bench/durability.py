"""Nothing accepted is lost: the Telegram bot under SIGTERM with a backlog, and under kill -9.

    python bench/durability.py term [--grace 2] [--people 20] [--side 1280] [--workers 1] [--serve]
    python bench/durability.py kill [--people 20] [--after 1.5] [--workers 2]

The bot runs as a child process (`python -m bot.telegram`, or `animebot serve` with --serve)
against the Telegram stand-in (tests/standins/telegram_api.py) in this process; each person
sends one synthetic photo of --side px.

`term`: once half the photos wait in the queue, SIGTERM; prints the seconds to exit, how many
people got their result and how many the "restarting" notice (anything else is a failure), then
starts the bot again and prints how long the put-off photos took and how many chats end with
exactly one message, the result.

`kill`: kill -9 --after seconds after the photos were sent; prints how many updates Telegram
had confirmed and how many status messages showed, then starts the bot again and prints the
photos answered, duplicates, status messages left behind and jobs left in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

from i18n import t
from tests.standins.telegram_api import Call, TelegramStandIn, make_user
from tests.telegram.helpers import matches, replies_to, synthetic_jpeg

LANGS = ("en", "ru", "zh")


def child_env(api: TelegramStandIn, data: Path, **settings: str) -> dict[str, str]:
    prefixes = ("ANIMEBOT_", "TELEGRAM_", "DISCORD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(
        PYTHONPATH=str(ROOT),
        ANIMEBOT_DATA=str(data),
        ANIMEBOT_RATE_BURST="0",
        ANIMEBOT_DAILY_QUOTA="0",
        TELEGRAM_TOKEN=api.token,
        TELEGRAM_API_URL=api.base_url,
    )
    env.update(settings)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def spawn(args: list[str], env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("a") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=err
        )


def queued(call: Call) -> bool:
    return call.ok and any(matches("tg.status.queued", x, call.params.get("text")) for x in LANGS)


def answered(api: TelegramStandIn, message: dict[str, Any]) -> int:
    return sum(1 for c in api.calls_to("sendPhoto") if c.ok and replies_to(message)(c))


def only_the_result(api: TelegramStandIn, person: dict[str, Any]) -> bool:
    shown = api.sent_messages(person["id"])
    return len(shown) == 1 and "photo" in shown[0]


async def send(
    api: TelegramStandIn, people: int, side: int, base: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    users = [make_user(base + n, language_code=LANGS[n % 3]) for n in range(people)]
    return [
        (u, await api.send_photo(u, None, synthetic_jpeg(side, side * 3 // 4, seed=n)))
        for n, u in enumerate(users)
    ]


async def term(args: argparse.Namespace) -> None:
    async with TelegramStandIn() as api:
        tmp = Path(tempfile.mkdtemp())
        entry = ["-m", "cli.main", "serve"] if args.serve else ["-m", "bot.telegram"]
        extra = {"ANIMEBOT_PORT": str(free_port())} if args.serve else {}
        env = child_env(
            api,
            tmp / "data",
            ANIMEBOT_WORKERS=str(args.workers),
            ANIMEBOT_SHUTDOWN_GRACE_S=str(args.grace),
            **extra,
        )
        bot = await spawn(entry, env, tmp / "bot.log")
        await api.wait_for("getUpdates", timeout=180)
        sent = await send(api, args.people, args.side, 90_000)
        await api.wait_for("sendMessage", queued, count=args.people // 2, timeout=600)
        began = time.monotonic()
        bot.send_signal(signal.SIGTERM)
        code = await bot.wait()
        took = time.monotonic() - began
        results = notices = 0
        for person, _ in sent:
            shown = api.sent_messages(person["id"])
            if only_the_result(api, person):
                results += 1
            elif len(shown) == 1 and shown[0].get("text") == t(
                "job.deferred", person["language_code"]
            ):
                notices += 1
        log = (tmp / "bot.log").read_text()
        errors = sum(1 for line in log.splitlines() if "Traceback" in line or " ERROR " in line)
        print(
            f"{' '.join(entry[1:])}: grace {args.grace} s, {args.people} photos of {args.side} px, "
            f"{args.workers} worker(s): exit {code} {took:.1f} s after SIGTERM; {results} results, "
            f"{notices} 'restarting' notices, {args.people - results - notices} other; "
            f"{errors} ERROR/Traceback log lines"
        )
        mark = api.mark()
        again = await spawn(["-m", "bot.telegram"], env, tmp / "bot.log")
        began = time.monotonic()
        put_off = [m for p, m in sent if not only_the_result(api, p)]
        for message in put_off:
            await api.wait_for("sendPhoto", replies_to(message), since=mark, timeout=900)
        took = time.monotonic() - began
        again.send_signal(signal.SIGTERM)
        await again.wait()
        clean = sum(1 for p, _ in sent if only_the_result(api, p))
        print(
            f"  next start: {len(put_off)} put-off photos answered {took:.1f} s after it began; "
            f"{clean}/{args.people} chats end with exactly one message, the result"
        )


async def kill(args: argparse.Namespace) -> None:
    async with TelegramStandIn() as api:
        tmp = Path(tempfile.mkdtemp())
        env = child_env(api, tmp / "data", ANIMEBOT_WORKERS=str(args.workers))
        bot = await spawn(["-m", "bot.telegram"], env, tmp / "bot.log")
        await api.wait_for("getUpdates", timeout=180)
        sent = await send(api, args.people, args.side, 95_000)
        await asyncio.sleep(args.after)  # the scenario: kill -9 this long after the photos
        bot.kill()
        await bot.wait()
        confirmed = args.people - api.pending_updates
        before = sum(1 for _, m in sent if answered(api, m))
        showing = sum(1 for p, _ in sent for m in api.sent_messages(p["id"]) if "text" in m)
        print(
            f"kill -9 {args.after} s after {args.people} photos: {confirmed} updates confirmed "
            f"to Telegram, {before} answered before the kill, {showing} status messages showing"
        )
        again = await spawn(["-m", "bot.telegram"], env, tmp / "bot.log")
        began = time.monotonic()
        for _, message in sent:
            await api.wait_for(
                "sendPhoto", lambda c, m=message: c.ok and replies_to(m)(c), timeout=900
            )
        took = time.monotonic() - began
        again.send_signal(signal.SIGTERM)  # a graceful stop finishes the last deletes
        await again.wait()
        done = sum(1 for _, m in sent if answered(api, m))
        twice = sum(max(0, answered(api, m) - 1) for _, m in sent)
        stale = sum(1 for p, _ in sent for m in api.sent_messages(p["id"]) if "text" in m)
        with contextlib.closing(sqlite3.connect(tmp / "data" / "animebot.sqlite3")) as conn:
            left = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
        print(
            f"  next start: {done}/{args.people} photos answered ({took:.1f} s after it began), "
            f"{twice} answered twice, {stale} status messages left behind, {left} jobs left"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("term", help="SIGTERM with a backlog and a short grace, then restart")
    p.add_argument("--grace", type=float, default=2.0)
    p.add_argument("--people", type=int, default=20)
    p.add_argument("--side", type=int, default=1280)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--serve", action="store_true", help="run `animebot serve`, not the bot alone")
    p = sub.add_parser("kill", help="kill -9 shortly after the photos, then restart")
    p.add_argument("--people", type=int, default=20)
    p.add_argument("--after", type=float, default=1.5)
    p.add_argument("--side", type=int, default=1280)
    p.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(term(args) if args.what == "term" else kill(args))


if __name__ == "__main__":
    main()
