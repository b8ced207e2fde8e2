"""What every entry point (`animebot serve`, `python -m bot.telegram`, `python -m bot.discord`)
does before it runs: settings or a clear exit, and one logging setup."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from service import logprivacy
from service.settings import Settings, SettingsError


def load_settings(command: str, stream: TextIO | None = None) -> Settings | None:
    """Settings from the environment, or None after printing each problem on its own line."""
    stream = stream or sys.stderr
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"animebot {command}: invalid configuration", file=stream)
        for problem in exc.problems:
            print(f"  {problem}", file=stream)
        return None


def configure_logging(level: str) -> None:
    """One log format on stderr; our loggers at `level`, library loggers capped (their DEBUG
    lines are raw API payloads); every record scrubbed of tokens, people's ids and names."""
    logprivacy.install()
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logprivacy.cap_third_party_loggers(level)
