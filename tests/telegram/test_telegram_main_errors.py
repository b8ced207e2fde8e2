"""`python -m bot.telegram` when it cannot run: one line on stderr and the documented exit code
(1: cannot start, 2: a setting is missing or invalid), never a traceback."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from tests.standins.telegram_api import TelegramStandIn

ROOT = Path(__file__).resolve().parents[2]


async def run_module(tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    """Run `python -m bot.telegram` to its end; its exit code and its stderr lines (log lines
    at INFO, the default level, included)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ANIMEBOT_"))}
    environ.update(ANIMEBOT_DATA=str(tmp_path / "data"), ANIMEBOT_WORKERS="1", **env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.telegram",
        cwd=ROOT,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, (out + err).decode().splitlines()


def not_log_lines(lines: list[str]) -> list[str]:
    """What the program printed itself: log lines start with a date ("2026-01-02 ...")."""
    return [line for line in lines if not (line[:4].isdigit() and line[4:5] == "-")]


async def test_a_rejected_token_is_one_line_and_exit_1(
    telegram_standin: TelegramStandIn, tmp_path: Path
) -> None:
    wrong = telegram_standin.token.split(":")[0] + ":not-the-right-secret"
    code, lines = await run_module(
        tmp_path, TELEGRAM_TOKEN=wrong, TELEGRAM_API_URL=telegram_standin.base_url
    )
    assert code == 1
    assert not_log_lines(lines) == [
        "telegram: Telegram rejected TELEGRAM_TOKEN (mistyped or revoked?): copy the token "
        "again from @BotFather"
    ]
    assert not any("Traceback" in line for line in lines)
    assert not any("not-the-right-secret" in line for line in lines)
    assert [c.method for c in telegram_standin.calls] == ["getMe"]  # it asked, then stopped


async def test_an_unreachable_bot_api_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, lines = await run_module(
        tmp_path, TELEGRAM_TOKEN="123:abc", TELEGRAM_API_URL=f"http://127.0.0.1:{port}"
    )
    assert code == 1
    assert not_log_lines(lines) == [
        f"telegram: cannot reach the Telegram Bot API at 127.0.0.1:{port} (connection refused): "
        "check TELEGRAM_API_URL and that the Bot API server runs"
    ]


async def test_settings_problems_exit_2_naming_the_setting(tmp_path: Path) -> None:
    missing = await run_module(tmp_path)
    assert missing == (
        2,
        [
            "telegram: TELEGRAM_TOKEN is not set: create a bot with @BotFather first "
            "(README.md, Telegram bot)"
        ],
    )
    admins = await run_module(tmp_path, TELEGRAM_TOKEN="123:abc", TELEGRAM_ADMINS="111, abc")
    assert admins == (
        2,
        [
            "animebot telegram: invalid configuration",
            "  TELEGRAM_ADMINS='111, abc': user ids are numbers, comma separated; not 'abc'",
        ],
    )
    assert not (tmp_path / "data").exists()  # refused before anything was set up
