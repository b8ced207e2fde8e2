"""Updates some front end already took in, shared by all front ends through Redis.

Telegram delivers a webhook update again when it did not get our 200 (a timeout, a front end
that died after storing the job); behind a reverse proxy the retry may reach another front end,
after the first one already answered and finished the job's durable row. A mark per update id
(kept a day, Telegram's own retry horizon) makes that front end confirm it without answering
again. Marked only once the update was taken in (its job stored), so a front end dying before
that leaves the update to the retry.
"""

from __future__ import annotations

from redis.asyncio import Redis

KEEP_S = 24 * 3600


class SeenUpdates:
    def __init__(self, url: str, namespace: str) -> None:
        self.redis: Redis = Redis.from_url(url)
        self.namespace = namespace

    def _key(self, update_id: int) -> str:
        return f"animebot:seen:{self.namespace}:{update_id}"

    async def taken(self, update_id: int) -> bool:
        return bool(await self.redis.exists(self._key(update_id)))

    async def mark(self, update_id: int) -> None:
        await self.redis.set(self._key(update_id), b"1", ex=KEEP_S)

    async def close(self) -> None:
        await self.redis.aclose()
