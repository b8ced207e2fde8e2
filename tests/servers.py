"""Real database servers for tests: PostgreSQL 15 and Redis 7 from Debian's packages.

Each server runs from a fresh temporary directory (data, unix socket, log) on a free TCP port
of 127.0.0.1, with durability switched off (tests need speed, not crash safety), and is stopped
and removed at the end of the session. PostgreSQL refuses to run as root, and CI runs as root:
then the server runs as `nobody` (the directory is chowned to it). `make test` installs the
packages when it can; the fixtures skip with the reason only when the binaries are missing.

Use from a test (fixtures exported by tests/conftest.py)::

    async def test_x(pg_url: str) -> None: ...          # a fresh, empty database per test
    def test_y(redis_server: RedisServer) -> None: ...  # redis_server.url, .socket
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("ANIMEBOT_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = os.environ.get("ANIMEBOT_REDIS_SERVER", "/usr/bin/redis-server")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class ServerUnavailable(RuntimeError):
    """The server's binaries are not installed (the fixtures turn this into a skip)."""


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel picks it; the server binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged() -> tuple[int, int] | None:
    """(uid, gid) of `nobody` when we are root (PostgreSQL will not run as root), else None."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def _chown_tree(root: Path, ids: tuple[int, int] | None) -> None:
    if ids is None:
        return
    for folder, dirs, files in os.walk(root):
        os.chown(folder, *ids)
        for name in dirs + files:
            os.chown(Path(folder) / name, *ids)


def _run_as(ids: tuple[int, int] | None) -> dict[str, object]:
    """Popen arguments that drop to `ids` in the child before exec (no su/runuser needed)."""
    if ids is None:
        return {}
    return {"user": ids[0], "group": ids[1], "extra_groups": []}


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll `ready` until it holds; fail with the server's log if it exits or times out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    delay = 0.02
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready after {START_TIMEOUT_S:.0f} s:\n{_tail(log)}")
        time.sleep(delay)  # polling a readiness probe with a deadline, not synchronisation
        delay = min(delay * 2, 0.25)


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class PostgresServer:
    """A running PostgreSQL: superuser `postgres`, trust authentication, local only."""

    root: Path
    port: int
    socket_dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, database: str = "postgres") -> str:
        """TCP URL of `database` (what ANIMEBOT_DB takes)."""
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        """The same database through the unix socket in the temporary directory."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def new_database_name(self) -> str:
        return "t_" + uuid.uuid4().hex[:16]

    @classmethod
    def start(cls) -> PostgresServer:
        initdb, postgres = PG_BIN / "initdb", PG_BIN / "postgres"
        if not (initdb.is_file() and postgres.is_file()):
            raise ServerUnavailable(
                f"PostgreSQL 15 not found in {PG_BIN} (apt-get install postgresql, or set "
                "ANIMEBOT_PG_BIN to the folder with initdb and postgres)"
            )
        ids = _unprivileged()
        # Under /tmp, not pytest's tmp_path: that one is private to root, and `nobody` must
        # reach the folder (and a unix socket path must stay short).
        root = Path(tempfile.mkdtemp(prefix="animebot-pg-"))
        data, sockets, log = root / "data", root / "run", root / "postgres.log"
        sockets.mkdir()
        log.touch()
        _chown_tree(root, ids)
        init = [str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        subprocess.run(
            [*init, "--no-sync", "--no-instructions", "--locale=C"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **_run_as(ids),  # type: ignore[arg-type]
        )
        port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(sockets),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "32MB",
        }
        args = [str(postgres), "-D", str(data)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **_run_as(ids),  # type: ignore[arg-type]
            )
        server = cls(root, port, sockets, proc)
        isready = PG_BIN / "pg_isready"

        def ready() -> bool:
            probe = [str(isready), "-q", "-h", str(sockets), "-p", str(port), "-U", "postgres"]
            return subprocess.run(probe, check=False).returncode == 0

        try:
            _wait_until(ready, proc, log)
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # "fast" shutdown: roll back, close, exit
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RedisServer:
    """A running redis-server without persistence, on 127.0.0.1 and a unix socket."""

    root: Path
    port: int
    socket: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_url(self) -> str:
        return f"unix://{self.socket}?db=0"

    @classmethod
    def start(cls) -> RedisServer:
        binary = shutil.which(REDIS_SERVER) or shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailable(
                f"redis-server not found at {REDIS_SERVER} or on PATH "
                "(apt-get install redis-server, or set ANIMEBOT_REDIS_SERVER)"
            )
        root = Path(tempfile.mkdtemp(prefix="animebot-redis-"))
        sock, log = root / "redis.sock", root / "redis.log"
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--unixsocket", str(sock)]
        args += ["--unixsocketperm", "700", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(root), "--logfile", str(log), "--daemonize", "no"]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        server = cls(root, port, sock, proc)
        try:
            _wait_until(server.ping, proc, log)
        except BaseException:
            server.stop()
            raise
        return server

    def ping(self) -> bool:
        """True when the server answers PING with PONG."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)
        shutil.rmtree(self.root, ignore_errors=True)
