"""`python -m bot.discord` when it cannot run: one line on stderr and the documented exit code,
the same as `python -m bot.telegram` (1: cannot start, 2: a setting is missing or invalid)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.standins.discord_api import DiscordStandIn

ROOT = Path(__file__).resolve().parents[2]

# `python -m bot.discord`, with discord.py's REST base and gateway pointed at the stand-in
# first (what `patch_discord` does in-process; the stand-in has no other way in).
LAUNCH = """
import runpy, sys, yarl
import discord.gateway, discord.http
discord.http.Route.BASE = sys.argv[1]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sys.argv[2])
runpy.run_module("bot.discord", run_name="__main__", alter_sys=True)
"""


async def run_module(
    tmp_path: Path, standin: DiscordStandIn | None = None, **env: str
) -> tuple[int, list[str]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "ANIMEBOT_"))}
    environ.update(ANIMEBOT_DATA=str(tmp_path / "data"), ANIMEBOT_WORKERS="1", **env)
    argv = ["-m", "bot.discord"]
    if standin is not None:
        argv = ["-c", LAUNCH, standin.api_base, str(standin.gateway_url)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
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
    discord_standin: DiscordStandIn, tmp_path: Path
) -> None:
    code, lines = await run_module(
        tmp_path, discord_standin, DISCORD_TOKEN="not-the-right-token.abc123"
    )
    assert code == 1
    assert not_log_lines(lines) == [
        "discord: Discord rejected DISCORD_TOKEN: copy the bot token again from the Developer "
        "Portal (Bot > Reset Token)"
    ]
    assert not any("Traceback" in line or "abc123" in line for line in lines)


async def test_settings_problems_exit_2_naming_the_setting(tmp_path: Path) -> None:
    missing = await run_module(tmp_path)
    assert missing == (2, ["discord: DISCORD_TOKEN is not set (see README.md, Discord bot)"])
    admins = await run_module(tmp_path, DISCORD_TOKEN="x", DISCORD_ADMINS="12345678901234567,me")
    assert admins == (
        2,
        [
            "animebot discord: invalid configuration",
            "  DISCORD_ADMINS='12345678901234567,me': user ids are numbers, comma separated; "
            "not 'me'",
        ],
    )
    assert not (tmp_path / "data").exists()
