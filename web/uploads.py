"""A memory budget for the photos the web page is holding.

`POST /api/convert` reads the whole upload into memory and keeps it there until the answer
is sent. Without a bound, a burst of large uploads would all sit in memory at once, however
long the conversion queue (100 waiting 20 MB uploads: 2 GB). The `bound_uploads` middleware
admits a conversion request only while the uploads admitted and not yet answered, counted at
their declared size, fit `UploadBudget.limit`; the others wait in order, their bodies unread
(TCP holds them at the client, so a waiting upload costs the server no memory). With the
default 20 MB upload limit, the budget is 40 MB: twenty typical 2 MB photos at once, or two of
the largest.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from web.app import STATE

MIN_BUDGET_BYTES = 32 * 1024 * 1024


class UploadBudget:
    """A first-come, first-served semaphore counted in bytes."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the upload budget must be positive")
        self.limit = limit
        self.held = 0  # bytes of the requests admitted and not finished
        self._queue: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._watchers: list[tuple[Callable[[UploadBudget], bool], asyncio.Future[None]]] = []

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        size = max(1, min(size, self.limit))  # one upload alone always fits
        if self._queue or self.held + size > self.limit:
            future = asyncio.get_running_loop().create_future()
            entry = (size, future)
            self._queue.append(entry)
            self._changed()
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self.held -= size  # admitted just as it was cancelled: pass it on
                else:
                    self._queue.remove(entry)
                self._admit()
                raise
        else:
            self.held += size
        try:
            yield
        finally:
            self.held -= size
            self._admit()

    def _admit(self) -> None:
        while self._queue and self.held + self._queue[0][0] <= self.limit:
            size, future = self._queue.popleft()
            self.held += size
            future.set_result(None)
        self._changed()

    def _changed(self) -> None:
        for watcher in list(self._watchers):
            predicate, future = watcher
            if not future.done() and predicate(self):
                future.set_result(None)
                self._watchers.remove(watcher)

    async def wait_until(self, predicate: Callable[[UploadBudget], bool]) -> None:
        """Wait until `predicate(self)` holds (checked whenever the queue changes); for tests."""
        if predicate(self):
            return
        future = asyncio.get_running_loop().create_future()
        watcher = (predicate, future)
        self._watchers.append(watcher)
        try:
            await future
        finally:
            if watcher in self._watchers:
                self._watchers.remove(watcher)


UPLOADS = web.AppKey("animebot_upload_budget", UploadBudget)


def budget_for(body_limit: int) -> UploadBudget:
    return UploadBudget(max(2 * body_limit, MIN_BUDGET_BYTES))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def bound_uploads(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hold `POST /api/convert` until its upload fits the budget (see the module docstring).
    A request declaring more than the app reads is let through at once: it is refused before
    its body is read."""
    budget = request.app.get(UPLOADS)
    route = request.match_info.route
    if budget is None or request.method != "POST" or route.name != "convert":
        return await handler(request)
    limit = request.app[STATE].body_limit
    size = request.content_length
    if size is not None and size > limit:
        return await handler(request)
    async with budget.hold(limit if size is None else size):
        return await handler(request)
