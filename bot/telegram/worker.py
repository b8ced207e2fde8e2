"""Telegram on a worker (`animebot worker`, `serve --role worker`): no Application and no
updates, only a `telegram.Bot` built from the token, through which the job runner fetches the
photos of queued Telegram jobs and delivers their replies (bot/telegram/outlet.py)."""

from __future__ import annotations

import logging
from typing import Any

from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from bot.telegram.app import api_urls
from bot.telegram.delivery import Delivery
from bot.telegram.deps import Deps, FrontEndOptions
from bot.telegram.outlet import register as register_outlet
from bot.telegram.redact import protect_token
from service.runtime import Runtime

log = logging.getLogger("animebot.telegram")

TELEGRAM_URLS = ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot")


class TelegramWorkerOutlet:
    name = "telegram"

    def __init__(self, runtime: Runtime, options: FrontEndOptions | None = None) -> None:
        settings = runtime.settings
        if not settings.telegram_token:
            raise ValueError("TELEGRAM_TOKEN is not set")
        protect_token(settings.telegram_token)
        self.runtime = runtime
        self.options = options or FrontEndOptions()
        base_url, base_file_url = TELEGRAM_URLS
        if settings.telegram_api_url:
            base_url, base_file_url = api_urls(settings.telegram_api_url)
        self.bot: ExtBot[Any] = ExtBot(
            settings.telegram_token,
            base_url=base_url,
            base_file_url=base_file_url,
            rate_limiter=AIORateLimiter(max_retries=self.options.rate_limit_retries),
            request=HTTPXRequest(connection_pool_size=64, pool_timeout=10.0),
        )

    async def start(self) -> None:
        await self.bot.initialize()  # getMe: checks the token
        delivery = Delivery(self.runtime.service, self.options.retry)
        deps = Deps(self.runtime, self.options, delivery)
        register_outlet(
            self.runtime.runner,
            self.bot,
            delivery,
            language=deps.language_of,
            status_interval_s=self.options.status_interval_s,
        )
        log.info("Telegram replies from this worker as @%s", self.bot.username)

    async def stop(self) -> None:
        await self.bot.shutdown()
