"""`animebot serve`: the web page always, plus Telegram and Discord when their tokens are set,
in one asyncio process around one engine, one service and one database.

Configuration comes from `Settings.from_env()` (environment, then the TOML file named by
ANIMEBOT_CONFIG); an invalid setting stops the start with one line per problem and exit code 2.
On SIGTERM or SIGINT: new conversions are turned away (the web page answers 503), running ones
finish within ANIMEBOT_SHUTDOWN_GRACE_S, the front ends stop, the database closes; exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

from cli.common import registry_from
from service.startup import configure_logging, load_settings

if TYPE_CHECKING:
    from cli.common import Subparsers
    from core.registry import Registry
    from service.queue.roles import QueueRoles
    from service.runtime import Runtime
    from service.settings import Settings

Role = Literal["front", "worker", "all"]

log = logging.getLogger("animebot.serve")

# (setting that turns it on, module, class): imported only when the token is set.
BOT_FRONT_ENDS = (
    ("telegram_token", "TELEGRAM_TOKEN", "bot.telegram.app", "TelegramFrontEnd"),
    ("discord_token", "DISCORD_TOKEN", "bot.discord.client", "DiscordFrontEnd"),
)
# A worker takes no updates: it only delivers replies, from the token alone.
BOT_WORKER_OUTLETS = (
    ("telegram_token", "TELEGRAM_TOKEN", "bot.telegram.worker", "TelegramWorkerOutlet"),
    ("discord_token", "DISCORD_TOKEN", "bot.discord.worker", "DiscordWorkerOutlet"),
)


class FrontEnd(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Listener(FrontEnd, Protocol):
    """The process's HTTP listener: the web page, or a worker's health and metrics."""

    @property
    def url(self) -> str: ...

    def begin_drain(self) -> None: ...


FrontEndFactory: TypeAlias = Callable[["Runtime"], FrontEnd]


class StartupError(Exception):
    """A problem found before serving that the operator must fix (exit 2)."""


def register(subparsers: Subparsers) -> None:
    from service.settings import help_text

    p = subparsers.add_parser(
        "serve",
        help="run the web page (and the Telegram / Discord bots when their tokens are set)",
        description="Run animebot: the web page on --host:--port, plus the Telegram bot when "
        "TELEGRAM_TOKEN is set and the Discord bot when DISCORD_TOKEN is set, all in one "
        "process sharing one engine, queue and database. Stop with SIGTERM or Ctrl+C: "
        "running conversions finish first (ANIMEBOT_SHUTDOWN_GRACE_S).",
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="address to bind (overrides ANIMEBOT_HOST; default 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, help="port to listen on (overrides ANIMEBOT_PORT; default 8080)"
    )
    p.add_argument(
        "--role",
        choices=("front", "worker", "all"),
        default="all",
        help="with ANIMEBOT_QUEUE (Redis): 'front' takes requests (web page, bots) and queues "
        "them, 'worker' converts queued jobs and delivers the replies, 'all' (default) does "
        "both. Without ANIMEBOT_QUEUE only 'all' (one process, in-process queue)",
    )
    p.set_defaults(handler=run)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"must be a TCP port (1-65535), not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    command = "worker" if getattr(args, "handler", None) is not run else "serve"
    settings = load_settings(command)
    if settings is None:
        return 2
    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    settings = dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]
    role: Role = getattr(args, "role", "all")
    if role != "all" and not settings.queue_url:
        print(
            f"animebot {command}: --role {role} needs ANIMEBOT_QUEUE (a redis:// URL): front ends "
            "and workers meet on that queue",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level)
    try:
        bots = bot_classes(settings, BOT_WORKER_OUTLETS if role == "worker" else None)
    except StartupError as exc:
        print(f"animebot serve: {exc}", file=sys.stderr)
        return 2
    dirs = getattr(args, "models_dir", None)
    registry = registry_from(args) if dirs else None
    concurrency: int | None = getattr(args, "concurrency", None)
    return asyncio.run(serve(settings, bots, registry=registry, role=role, concurrency=concurrency))


def bot_classes(
    settings: Settings, kinds: tuple[tuple[str, str, str, str], ...] | None = None
) -> list[tuple[str, FrontEndFactory]]:
    """The bot front ends whose tokens are set (or `kinds`: a worker's outlets), imported now
    so a missing one fails at once."""
    found: list[tuple[str, FrontEndFactory]] = []
    for attr, env, module_name, class_name in BOT_FRONT_ENDS if kinds is None else kinds:
        if not getattr(settings, attr):
            continue
        try:
            module = importlib.import_module(module_name)
            cls: FrontEndFactory = getattr(module, class_name)
        except (ImportError, AttributeError) as exc:
            raise StartupError(
                f"{env} is set, but the front end {module_name}.{class_name} cannot be loaded "
                f"({type(exc).__name__}: {exc}); unset {env} or install the complete animebot"
            ) from None
        found.append((module_name.split(".")[1], cls))
    return found


async def serve(
    settings: Settings,
    bots: list[tuple[str, FrontEndFactory]],
    *,
    registry: Registry | None = None,
    stop: asyncio.Event | None = None,
    role: Role = "all",
    concurrency: int | None = None,
) -> int:
    """Run until SIGTERM / SIGINT (or until `stop` is set, for embedding), then shut down
    gracefully. Returns the exit code: 0 after a clean stop, 1 when something could not start.
    With ANIMEBOT_QUEUE set, `role` picks the front end's half, the worker's, or both."""
    from service.runtime import Runtime

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning(
                "%s again: still shutting down (at most %.0f s)", name, settings.shutdown_grace_s
            )
            return
        log.info("%s: shutting down", name)
        stop.set()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        runtime = await Runtime.start(settings, registry=registry, warm=role != "front")
        queue = _queue_roles(runtime, role, concurrency)
        started: list[tuple[str, FrontEnd]] = []
        code = 0
        web: Listener | None = None
        try:
            if queue is not None:
                code = await _start_queue(queue.start_front)
            if code == 0:
                web = _listener(runtime, queue)
                code = await _start_front_ends(runtime, web, bots, started)
            if code == 0 and queue is not None:
                code = await _start_queue(queue.start_workers)
            if code == 0:
                if role == "worker" and queue is not None:
                    # A worker's listener answers only /healthz, /readyz and /metrics.
                    log.info(
                        "animebot is serving as worker on the shared queue: health and "
                        "metrics on %s",
                        web.url if web else "-",
                    )
                else:
                    log.info(
                        "animebot is serving%s: open %s (front ends: %s)",
                        f" as {role} on the shared queue" if queue is not None else "",
                        web.url if web else "-",
                        ", ".join(name for name, _ in started),
                    )
                for line in settings.describe():
                    log.debug("setting %s", line)
                await stop.wait()
        finally:
            await shutdown(runtime, web, started, queue)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    return code


def _queue_roles(runtime: Runtime, role: Role, concurrency: int | None) -> QueueRoles | None:
    if not runtime.settings.queue_url:
        return None
    from service.queue.roles import QueueRoles

    return QueueRoles(runtime, role, concurrency=concurrency)


def _listener(runtime: Runtime, queue: QueueRoles | None) -> Listener:
    """The web page, or for a worker only /healthz, /readyz and /metrics."""
    if queue is not None and queue.role == "worker":
        from web.ops import OpsServer

        return OpsServer(runtime, queue.ping)
    from web import WebFrontEnd

    return WebFrontEnd(runtime)


async def _start_queue(step: Callable[[], Awaitable[None]]) -> int:
    try:
        await step()
    except Exception as exc:
        log.debug("the queue failed to start", exc_info=True)
        print(f"animebot serve: cannot reach the queue (ANIMEBOT_QUEUE): {exc}", file=sys.stderr)
        return 1
    return 0


async def _start_front_ends(
    runtime: Runtime,
    web: Listener,
    bots: list[tuple[str, FrontEndFactory]],
    started: list[tuple[str, FrontEnd]],
) -> int:
    settings = runtime.settings
    try:
        await web.start()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        print(
            f"animebot serve: cannot listen on {settings.host}:{settings.port}: {reason}",
            file=sys.stderr,
        )
        return 1
    started.append(("web", web))
    for name, factory in bots:
        try:
            front = factory(runtime)
            await front.start()
        except Exception as exc:
            log.debug("the %s front end failed to start", name, exc_info=True)
            print(f"animebot serve: cannot start the {name} bot: {exc}", file=sys.stderr)
            return 1
        started.append((name, front))
    return 0


async def shutdown(
    runtime: Runtime,
    web: Listener | None,
    started: list[tuple[str, FrontEnd]],
    queue: QueueRoles | None = None,
) -> None:
    """Turn new work away, let running conversions finish (bounded), stop the front ends,
    then close the engine and the database."""
    if web is not None:
        web.begin_drain()
    grace = runtime.settings.shutdown_grace_s
    if queue is not None:  # workers take no new job and finish theirs; the queue closes
        await queue.stop(grace)
    running = runtime.runner.inflight
    if running:
        log.info("waiting up to %.0f s for %d running job(s)", grace, running)
    finished = await runtime.runner.drain(grace)
    if not finished:
        log.warning("shutdown: conversions still running after %.0f s; stopping anyway", grace)
    for name, front in reversed(started):
        try:
            await front.stop()
        except Exception:
            log.exception("stopping the %s front end failed", name)
    try:
        await runtime.stop()
    except Exception:
        log.exception("closing the engine or the database failed")
        raise
    log.info("animebot stopped")
