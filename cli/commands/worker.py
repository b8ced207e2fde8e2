"""`animebot worker [--concurrency N]`: convert jobs from the shared queue (ANIMEBOT_QUEUE) on
this machine and deliver the replies; same as `animebot serve --role worker`. Serves only
/healthz, /readyz and /metrics on --host:--port."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cli.commands import serve

if TYPE_CHECKING:
    from cli.common import Subparsers


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "worker",
        help="convert queued jobs from ANIMEBOT_QUEUE (Redis) and deliver the replies",
        description="Pull jobs from the shared queue named by ANIMEBOT_QUEUE (redis://...), "
        "convert them on this machine and deliver the replies (Telegram, Discord, the web "
        "front end waiting for it). Run as many as you like, on any machine that reaches "
        "Redis and the database. Stop with SIGTERM: running jobs finish first.",
    )
    p.add_argument(
        "--concurrency",
        type=_positive,
        help="jobs converted at once (default ANIMEBOT_WORKERS, i.e. the CPU cores)",
    )
    p.add_argument("--host", help="address for /healthz, /readyz, /metrics (default 127.0.0.1)")
    p.add_argument("--port", type=serve._port, help="port for them (default ANIMEBOT_PORT)")
    p.set_defaults(handler=run, role="worker")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    return serve.run(args)
