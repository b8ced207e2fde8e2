"""`animebot serve` as a real process: readiness, graceful shutdown on SIGTERM with conversions
in flight, a clean database afterwards, and clear refusals of bad configuration."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import aiohttp
import pytest

from cli.commands import serve as serve_command
from cli.commands.serve import serve
from service.runtime import Runtime
from service.settings import FIELDS, Settings
from tests.web.helpers import decode, form

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 120.0
START_TIMEOUT_S = 120.0
PHOTOS = (
    "face_single_lowlight.jpg",
    "portrait_fullbody_sitting.jpg",
    "multi_face_group6_frontal.jpg",
    "portrait_fullbody_single.jpg",
)
SERVE = [sys.executable, "-m", "cli.main", "serve"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANIMEBOT_", "TELEGRAM_", "DISCORD_"))
    }
    env.update(
        ANIMEBOT_DATA=str(tmp_path / "data"),
        ANIMEBOT_MODELS_DIR=str(tmp_path / "no-user-models"),
        ANIMEBOT_HOST="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    env.update(values)
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path, Path]]:
    """A running `animebot serve`: (process, base URL, database path, log file)."""
    port = free_port()
    env = clean_env(
        tmp_path,
        ANIMEBOT_PORT=str(port),
        ANIMEBOT_WORKERS="1",  # conversions queue up, so the shutdown has work to wait for
        ANIMEBOT_RATE_BURST="0",
        ANIMEBOT_DAILY_QUOTA="0",
        ANIMEBOT_SHUTDOWN_GRACE_S=str(GRACE_S),
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(SERVE, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc, f"http://127.0.0.1:{port}", tmp_path / "data" / "animebot.sqlite3", log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


async def wait_ready(http: aiohttp.ClientSession, base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "animebot serve exited during start-up"
        try:
            async with http.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)  # poll interval of a bounded readiness wait
    pytest.fail("animebot serve did not become ready")


async def gauge(http: aiohttp.ClientSession, base: str, name: str) -> float:
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_sigterm_lets_running_conversions_finish(
    server: tuple[subprocess.Popen[bytes], str, Path, Path], photos_dir: Path
) -> None:
    proc, base, db_path, log = server
    async with aiohttp.ClientSession() as http:
        await wait_ready(http, base, proc)

        async def convert(name: str) -> tuple[int, bytes]:
            data = await asyncio.to_thread((photos_dir / name).read_bytes)
            async with http.post(f"{base}/api/convert", data=form(data)) as response:
                return response.status, await response.read()

        tasks = [asyncio.create_task(convert(name)) for name in PHOTOS]
        # Until every request is inside the service (or already answered).
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            inflight = await gauge(http, base, "animebot_conversions_inflight")
            done = sum(t.done() for t in tasks)
            if inflight + done == len(PHOTOS) and inflight >= 2:
                break
            assert time.monotonic() < deadline, "the conversions never arrived"
            assert done < len(PHOTOS), "finished before the signal: nothing to test"
            await asyncio.sleep(0.05)

        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # The process now turns new work away while the running conversions finish.
        while True:
            async with http.get(f"{base}/readyz") as response:
                if response.status == 503:
                    break
            assert time.monotonic() - signalled < 30, "readiness never dropped"
            await asyncio.sleep(0.05)
        assert not all(t.done() for t in tasks), "drained before the check: photos too small"
        async with http.post(f"{base}/api/convert", data=form(b"late")) as late:
            assert late.status == 503
            assert int(late.headers["Retry-After"]) >= 1

        results = await asyncio.gather(*tasks)

    for status, body in results:
        assert status == 200
        assert decode(body).width > 0
    code = await asyncio.to_thread(proc.wait, GRACE_S + 30)
    elapsed = time.monotonic() - signalled
    output = log.read_text()
    assert code == 0, output
    assert elapsed < GRACE_S, output
    assert "Traceback" not in output
    assert f"open http://127.0.0.1:{base.rsplit(':', 1)[1]}/ (front ends: web)" in output
    assert "SIGTERM: shutting down" in output and "animebot stopped" in output

    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT platform, status, cache_hit FROM usage").fetchall()
    assert sorted(rows) == [("web", "ok", 0)] * len(PHOTOS)


def run_serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVE, *args],
        cwd=ROOT,
        env=clean_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_invalid_settings_exit_2_with_one_line_each(tmp_path: Path) -> None:
    result = run_serve(
        tmp_path, ANIMEBOT_PORT="abc", ANIMEBOT_WORKERS="0", ANIMEBOT_ADMIN_TOKEN="hunter2"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "animebot serve: invalid configuration"
    assert any(line.strip().startswith("ANIMEBOT_PORT:") for line in lines[1:])
    assert any(line.strip().startswith("ANIMEBOT_WORKERS=") for line in lines[1:])
    assert len(lines) == 3
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "data").exists()  # refused before touching anything


def test_a_bad_config_file_is_refused_clearly(tmp_path: Path) -> None:
    config = tmp_path / "animebot.toml"
    config.write_text('animebot_port = 8081\nnot_a_setting = "x"\n')
    result = run_serve(tmp_path, ANIMEBOT_CONFIG=str(config))
    assert result.returncode == 2
    assert "unknown setting NOT_A_SETTING" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_documents_every_setting(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--help")
    assert result.returncode == 0
    for f in FIELDS:
        assert f.env in result.stdout, f.env
    assert "--port" in result.stdout and "--host" in result.stdout


def test_a_bad_port_argument_is_a_usage_error(tmp_path: Path) -> None:
    result = run_serve(tmp_path, "--port", "70000")
    assert result.returncode == 2
    assert "must be a TCP port" in result.stderr


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_serve(tmp_path, "--port", str(port), ANIMEBOT_ADMIN_TOKEN="hunter2-token")
    assert result.returncode == 1
    assert f"animebot serve: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "hunter2-token" not in result.stderr + result.stdout


# -- the same shutdown, in process, with a stand-in bot front end ----------------------------


class StandInBot:
    """Records what happened to it; checks that conversions were drained before its stop."""

    events: ClassVar[list[str]] = []
    fail_start: ClassVar[bool] = False

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("the bot service said no")
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append(f"stop inflight={self.runtime.service.inflight}")


@pytest.fixture
def stand_in() -> Iterator[type[StandInBot]]:
    StandInBot.events = []
    StandInBot.fail_start = False
    yield StandInBot


def settings_for(tmp_path: Path, port: int) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        host="127.0.0.1",
        port=port,
        workers=1,
        rate_burst=0,
        daily_quota=0,
        shutdown_grace_s=60.0,
    )


async def test_serve_drains_before_stopping_the_bots(
    tmp_path: Path, photos_dir: Path, stand_in: type[StandInBot]
) -> None:
    port = free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(settings_for(tmp_path, port), [("stand-in", stand_in)], stop=stop)
    )
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert not task.done(), "serve ended during start-up"
            try:
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)  # poll interval of a bounded readiness wait
        assert stand_in.events == ["start"]
        photo = await asyncio.to_thread((photos_dir / "city_tokyo_tower.jpg").read_bytes)
        conversion = asyncio.create_task(http.post(f"{base}/api/convert", data=form(photo)))
        while await gauge(http, base, "animebot_conversions_inflight") < 1:
            assert not conversion.done()
            await asyncio.sleep(0.02)
        stop.set()
        response = await conversion
        assert response.status == 200
        assert decode(await response.read()).width > 0
        response.release()
    assert await task == 0
    assert stand_in.events == ["start", "stop inflight=0"]


async def test_a_bot_that_cannot_start_is_one_clear_line(
    tmp_path: Path, stand_in: type[StandInBot], capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in.fail_start = True
    port = free_port()
    code = await serve(settings_for(tmp_path, port), [("stand-in", stand_in)])
    assert code == 1
    err = capsys.readouterr().err
    assert "animebot serve: cannot start the stand-in bot: the bot service said no" in err
    assert "Traceback" not in err
    with pytest.raises(aiohttp.ClientConnectionError):  # the web page was stopped too
        async with aiohttp.ClientSession() as http:
            await http.get(f"http://127.0.0.1:{port}/healthz")


def test_a_bot_token_without_its_front_end_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        serve_command,
        "BOT_FRONT_ENDS",
        (("telegram_token", "TELEGRAM_TOKEN", "bot.not_there.app", "TelegramFrontEnd"),),
    )
    with pytest.raises(serve_command.StartupError, match="TELEGRAM_TOKEN is set, but"):
        serve_command.bot_classes(Settings(telegram_token="123:abc"))
    assert serve_command.bot_classes(Settings()) == []
