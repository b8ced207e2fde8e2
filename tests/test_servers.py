"""The real test servers (tests/servers.py): PostgreSQL 15 runs unprivileged from a temporary
folder and answers on TCP and on its unix socket; redis-server answers, keeps nothing on disk."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg

from tests.servers import PostgresServer, RedisServer


def owner(path: str) -> int:
    return Path(path).stat().st_uid


def redis_command(server: RedisServer, *args: str) -> bytes:
    """One command in RESP over the unix socket; the raw reply."""
    payload = f"*{len(args)}\r\n".encode()
    for arg in args:
        payload += f"${len(arg.encode())}\r\n{arg}\r\n".encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(str(server.socket))
        conn.sendall(payload)
        return conn.recv(4096)


async def test_postgres_runs_unprivileged_on_tcp_and_its_socket(
    postgres_server: PostgresServer,
) -> None:
    tcp = await asyncpg.connect(postgres_server.url())
    try:
        assert "PostgreSQL 15" in await tcp.fetchval("SELECT version()")
        data_dir = await tcp.fetchval("SELECT current_setting('data_directory')")
    finally:
        await tcp.close()
    assert data_dir.startswith(str(postgres_server.root))
    if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as nobody
        assert owner(data_dir) != 0
    local = await asyncpg.connect(postgres_server.socket_url())
    try:
        assert await local.fetchval("SELECT inet_server_addr()") is None  # a unix socket
    finally:
        await local.close()


def test_redis_answers_and_keeps_nothing_on_disk(redis_server: RedisServer) -> None:
    assert redis_server.ping()
    assert redis_command(redis_server, "SET", "k", "v") == b"+OK\r\n"
    assert redis_command(redis_server, "GET", "k") == b"$1\r\nv\r\n"
    assert redis_command(redis_server, "CONFIG", "GET", "save").endswith(b"$0\r\n\r\n")
    assert redis_command(redis_server, "CONFIG", "GET", "appendonly").endswith(b"no\r\n")
    assert redis_server.url.startswith("redis://127.0.0.1:")
