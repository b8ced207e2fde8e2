"""Webhook mode: a small aiohttp server that hands Telegram's POSTs to the Application.

PTB's own webhook server needs tornado, which this project does not install; aiohttp is already
a dependency. Telegram sends the secret token given to setWebhook in the
`X-Telegram-Bot-Api-Secret-Token` header; requests without it are refused, so nobody else can
inject updates. Several front ends may sit behind one reverse proxy, any of them taking any
update: with ANIMEBOT_QUEUE set they share marks of the updates taken in (service/queue/seen.py),
so Telegram's retry of an update reaching another front end is not answered twice. TLS is the
reverse proxy's job (Telegram only calls https URLs on ports 443,
80, 88 or 8443). An update is answered 200 (which confirms it to Telegram) only once the bot
has taken it in (bot/telegram/intake.py): a photo's job is stored first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.telegram.intake import Intake

if TYPE_CHECKING:
    from service.queue.seen import SeenUpdates

log = logging.getLogger("animebot.telegram")
T = TypeVar("T")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024


class WebhookServer:
    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        *,
        host: str,
        port: int,
        path: str,
        secret: str,
        intake: Intake | None = None,
        seen: SeenUpdates | None = None,
    ) -> None:
        self.app, self.host, self.port = app, host, port
        self.intake = intake
        self.seen = seen  # with several front ends: updates another one already took in
        self.path = path if path.startswith("/") else "/" + path
        self._secret = secret
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        server = web.Application(client_max_size=MAX_UPDATE_BYTES)
        server.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(server, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("Telegram webhook listening on %s:%d%s", self.host, self.port, self.path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        if request.headers.get(SECRET_HEADER) != self._secret:
            return web.Response(status=403)
        try:
            data = await request.json()
            update = Update.de_json(data, self.app.bot)
        except Exception:  # not JSON, or not an Update
            return web.Response(status=400)
        if update is None:
            return web.Response(status=400)
        if self.seen is not None and await self._quietly(self.seen.taken(update.update_id)):
            return web.Response(status=200)  # a retry of an update another front end took
        if self.intake is not None:
            self.intake.fetched([update.update_id])
        await self.app.update_queue.put(update)
        if self.intake is not None:
            await self.intake.settled(below=update.update_id + 1)
        if self.seen is not None:
            await self._quietly(self.seen.mark(update.update_id))
        return web.Response(status=200)

    @staticmethod
    async def _quietly(step: Awaitable[T]) -> T | None:
        """Redis away: behave as one front end (the durable row still catches redeliveries
        of a job not answered yet)."""
        try:
            return await step
        except Exception:
            log.warning("webhook: Redis did not answer; update taken in without the shared mark")
            return None
