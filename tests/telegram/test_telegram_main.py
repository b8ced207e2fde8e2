"""`python -m bot.telegram` as people run it: settings from the environment, a real process,
SIGTERM stops it cleanly, and its logs never show the token."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from i18n import t
from tests.standins.telegram_api import TelegramStandIn
from tests.telegram.helpers import ALICE

ROOT = Path(__file__).resolve().parents[2]


async def test_module_entry_point_runs_the_bot(
    telegram_standin: TelegramStandIn, tmp_path: Path
) -> None:
    api = telegram_standin
    env = {
        **os.environ,
        "TELEGRAM_TOKEN": api.token,
        "TELEGRAM_API_URL": api.base_url,
        "ANIMEBOT_DATA": str(tmp_path / "data"),
        "ANIMEBOT_WORKERS": "1",
        "ANIMEBOT_LOG_LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.telegram",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await api.wait_polling(timeout=60)  # started: it is waiting for updates
        await api.send_text(ALICE, None, "/start")
        (answer,) = await api.wait_for("sendMessage", timeout=30)
        assert answer.params["text"] == t(
            "tg.start", "en", name="Alice", style=t("style.hayao", "en")
        )
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    logs = output.decode()
    assert "Telegram bot @animebot_test_bot running (long polling)" in logs
    assert "Telegram bot stopped" in logs
    assert api.token.split(":", 1)[1] not in logs
