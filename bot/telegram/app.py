"""The Telegram front end: one PTB `Application` built around the process's `Runtime`.

    front = TelegramFrontEnd(runtime)  # settings.telegram_token must be set
    await front.start()  # jobs left by the last run resumed; polling (or webhook) running
    ...
    await front.stop()  # no new updates; running conversions answered; shut down

The runtime is not the front end's: whoever started it (`animebot serve`, `python -m
bot.telegram`) stops it after `front.stop()`.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from telegram import BotCommand, Update
from telegram.error import Conflict, InvalidToken, TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from bot.telegram.delivery import PLATFORM, Delivery
from bot.telegram.deps import KEY, Context, Deps, FrontEndOptions
from bot.telegram.handlers import register
from bot.telegram.handlers.buttons import PRESSED
from bot.telegram.intake import Intake, IntakeApplication, IntakeBot
from bot.telegram.outlet import register as register_outlet
from bot.telegram.redact import protect_token
from bot.telegram.texts import MENU_COMMANDS
from bot.telegram.webhook import WebhookServer
from i18n import LANGUAGES, t
from service.lifecycle.outcomes import NOTICE_S
from service.runtime import Runtime

if TYPE_CHECKING:
    from service.queue.locks import SingletonLock
    from service.queue.seen import SeenUpdates

log = logging.getLogger("animebot.telegram")

App = Application[Any, Any, Any, Any, Any, Any]

POLLER_CONFLICT = (
    "another process is already receiving this bot's updates by long polling: only one "
    "poller may run per TELEGRAM_TOKEN. Stop the other one, or run several front ends in "
    "webhook mode (TELEGRAM_WEBHOOK_URL)"
)
CONFLICT_LOG_EVERY_S = 60.0


class PollerConflict(Exception):
    """A second long poller on the same token (refused at start)."""


ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


def api_urls(api_url: str) -> tuple[str, str]:
    """TELEGRAM_API_URL ("http://host:8081" or ".../bot") -> PTB's base_url, base_file_url."""
    base = api_url.rstrip("/")
    if not base.endswith("/bot"):
        base += "/bot"
    return base, base[: -len("/bot")] + "/file/bot"


def webhook_secret(token: str) -> str:
    """The secret Telegram sends with each webhook call: derived from the token (so it
    survives restarts), never the token itself."""
    return hashlib.sha256(f"animebot-webhook\0{token}".encode()).hexdigest()


def build_application(runtime: Runtime, options: FrontEndOptions | None = None) -> App:
    options = options or FrontEndOptions()
    settings = runtime.settings
    urls: dict[str, str] = {}
    if settings.telegram_api_url:
        urls["base_url"], urls["base_file_url"] = api_urls(settings.telegram_api_url)
    intake = Intake()
    # PTB's own bot, but getUpdates confirms only updates taken in (bot/telegram/intake.py).
    # The requests are what ApplicationBuilder would make (pool_timeout raised to 10 s).
    bot = IntakeBot(
        intake,
        settings.telegram_token,
        rate_limiter=AIORateLimiter(max_retries=options.rate_limit_retries),
        request=HTTPXRequest(connection_pool_size=256, pool_timeout=10.0),
        get_updates_request=HTTPXRequest(connection_pool_size=1),
        **urls,
    )
    builder = (
        ApplicationBuilder()
        .bot(bot)
        .application_class(IntakeApplication)
        # Conversions are bounded by the service's fair queue (which answers "busy" when full),
        # so PTB must not be the narrower gate: one slow photo never blocks other chats.
        .concurrent_updates(max(256, settings.queue_max + settings.workers))
    )
    if settings.telegram_webhook_url:
        builder = builder.updater(None)
    app = builder.build()
    delivery = Delivery(runtime.service, options.retry)
    deps = Deps(runtime, options, delivery, intake=intake)
    app.bot_data[KEY] = deps
    register(app)
    # The runner answers Telegram jobs through this bot (bot/telegram/outlet.py).
    register_outlet(
        runtime.runner,
        app.bot,
        delivery,
        language=deps.language_of,
        status_interval_s=options.status_interval_s,
        pressed=app.bot_data.setdefault(PRESSED, set()),
    )
    app.add_error_handler(_on_error)
    return app


async def _on_error(update: object, context: Context) -> None:
    """Handlers answer their own failures; whatever still escapes is logged, not shown."""
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("update %s: unhandled error", update_id, exc_info=context.error)


async def set_commands(app: App) -> None:
    """The command menu, in each catalogue language and as the default (English)."""
    for lang in (None, *LANGUAGES):
        commands = [BotCommand(name, t(f"tg.cmd.{name}", lang)) for name in MENU_COMMANDS]
        try:
            await app.bot.set_my_commands(commands, language_code=lang)
        except TelegramError as exc:  # a menu is not worth refusing to start
            log.warning("could not set the %s command menu: %s", lang or "default", exc)


class TelegramFrontEnd:
    def __init__(self, runtime: Runtime, options: FrontEndOptions | None = None) -> None:
        token = runtime.settings.telegram_token
        if not token:
            raise ValueError("TELEGRAM_TOKEN is not set")
        protect_token(token)  # before PTB or httpx can log a URL
        self.runtime = runtime
        self.options = options or FrontEndOptions()
        self.application = build_application(runtime, self.options)
        self._webhook: WebhookServer | None = None
        self._poller_lock: SingletonLock | None = None
        self._seen: SeenUpdates | None = None
        self._conflict_logged = -CONFLICT_LOG_EVERY_S
        self._initialized = False
        self._started = False

    @property
    def deps(self) -> Deps:
        found = self.application.bot_data[KEY]
        assert isinstance(found, Deps)
        return found

    @property
    def webhook_secret(self) -> str:
        return webhook_secret(self.runtime.settings.telegram_token)

    @property
    def running(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Connect (getMe), register the commands, resume the jobs the last run left, start
        receiving updates; returns once the bot is running."""
        app, settings = self.application, self.runtime.settings
        try:
            await app.initialize()  # getMe: checks the token
        except InvalidToken:
            # PTB's message quotes the token, and callers print start-up errors as they are.
            raise InvalidToken("Telegram rejected TELEGRAM_TOKEN (mistyped or revoked?)") from None
        self._initialized = True
        try:
            # Read before any new update can add a job of its own.
            left = await self.runtime.runner.left_over(PLATFORM)
            await set_commands(app)
            if settings.telegram_webhook_url:
                path = urlsplit(settings.telegram_webhook_url).path or "/"
                self._seen = self._shared_marks()
                self._webhook = WebhookServer(
                    app,
                    host=settings.host,
                    port=settings.telegram_webhook_port,
                    path=path,
                    secret=self.webhook_secret,
                    intake=self.deps.intake,
                    seen=self._seen,
                )
                await self._webhook.start()
                await app.bot.set_webhook(
                    settings.telegram_webhook_url,
                    allowed_updates=ALLOWED_UPDATES,
                    secret_token=self.webhook_secret,
                )
            elif app.updater is not None:
                await self._take_poller_lock()
                await app.updater.start_polling(
                    timeout=dtm.timedelta(seconds=self.options.poll_timeout_s),
                    allowed_updates=ALLOWED_UPDATES,
                    error_callback=self._on_polling_error,
                )
            await app.start()
        except BaseException:
            await self._close_receivers()
            await app.shutdown()
            self._initialized = False
            raise
        self._started = True
        await self.runtime.runner.resume(left)
        mode = "webhook" if self._webhook else "long polling"
        log.info("Telegram bot @%s running (%s)", app.bot.username, mode)

    async def stop(self) -> None:
        """Stop fetching updates (each one fetched is taken in first), let running jobs
        finish within the process's one grace period (ANIMEBOT_SHUTDOWN_GRACE_S, shared with
        the other front ends), then turn away what still waits: those jobs stay stored and
        their people are told they will be done after the restart. Idempotent."""
        app = self.application
        if not self._initialized:
            return
        service, runner = self.runtime.service, self.runtime.runner
        service.start_grace()  # the one grace period of the process starts (if not yet)
        await self._close_receivers()
        if self._started:
            self._started = False
            # Application.stop() dispatches updates already fetched and waits for every
            # handler; the jobs they accepted run in the job runner.
            stopping = asyncio.create_task(app.stop(), name="telegram-stop")

            def running() -> set[asyncio.Task[Any]]:
                handlers = {t for t in self.deps.inflight if not t.done()}
                return handlers | runner.pending_tasks(PLATFORM)

            _, pending = await asyncio.wait({stopping, *running()}, timeout=service.grace_left())
            while not pending and (more := running()):  # accepted while the handlers ended
                _, pending = await asyncio.wait(more, timeout=service.grace_left())
            if pending:
                service.end_grace()  # waiting jobs: put off, each person told once
                _, pending = await asyncio.wait(
                    {stopping, *running()}, timeout=service.final_left()
                )
            if pending:
                late = running()
                log.warning(
                    "shutdown: %d Telegram job(s) still running after the grace; cutting short",
                    len(late),
                )
                for task in late:
                    task.cancel()  # each keeps its stored job and tells its person
                if late:
                    await asyncio.wait(late, timeout=NOTICE_S + 1)
            await stopping
        await app.shutdown()
        self._initialized = False
        log.info("Telegram bot stopped")

    async def _close_receivers(self) -> None:
        if self._webhook is not None:
            await self._webhook.stop()
            self._webhook = None
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self._poller_lock is not None:
            await self._poller_lock.release()
            self._poller_lock = None
        if self._seen is not None:
            await self._seen.close()
            self._seen = None

    def _shared_marks(self) -> SeenUpdates | None:
        """With ANIMEBOT_QUEUE: the update marks shared by every webhook front end."""
        url = self.runtime.settings.queue_url
        if not url:
            return None
        from service.queue.seen import SeenUpdates

        token = self.runtime.settings.telegram_token
        return SeenUpdates(url, hashlib.sha256(f"animebot-seen\0{token}".encode()).hexdigest()[:16])

    async def _take_poller_lock(self) -> None:
        """Long polling has one consumer per token. With ANIMEBOT_QUEUE set, a lock in Redis
        refuses a second poller at start; without Redis, Telegram's 409 Conflict does (see
        `_on_polling_error`). Several front ends take the webhook mode instead."""
        url = self.runtime.settings.queue_url
        if not url:
            return
        from service.queue.locks import LockHeld, SingletonLock

        token = self.runtime.settings.telegram_token
        digest = hashlib.sha256(f"animebot-poller\0{token}".encode()).hexdigest()[:16]
        lock = SingletonLock(url, f"animebot:telegram-poller:{digest}")
        try:
            await lock.acquire()
        except LockHeld:
            raise PollerConflict(POLLER_CONFLICT) from None
        self._poller_lock = lock

    def _on_polling_error(self, error: TelegramError) -> None:
        if isinstance(error, Conflict):
            now = time.monotonic()
            if now - self._conflict_logged > CONFLICT_LOG_EVERY_S:
                self._conflict_logged = now
                log.error("%s (Telegram answered 409 Conflict)", POLLER_CONFLICT)
            return
        log.warning("polling Telegram failed: %s", error)
