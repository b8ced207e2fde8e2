"""What every entry point (`animebot serve`, `python -m bot.telegram`, `python -m bot.discord`)
does before it runs: settings or a clear exit, and one logging setup."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

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
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Third-party chatter (HTTP client connection pools, bot libraries) only when debugging.
    if level.upper() != "DEBUG":
        for noisy in ("httpx", "httpcore", "telegram", "discord", "PIL", "matplotlib"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
