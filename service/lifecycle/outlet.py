"""Where a job's answer goes, and what that place accepts.

Each kind ("telegram", "discord", "web") registers a factory on the runner (`Outlets`); the
factory builds an `Outlet` from the job alone (plus what the registering process holds: a
bot token, the waiting HTTP requests), so a worker on another machine can deliver too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from service.fairqueue import QueueStatus

if TYPE_CHECKING:
    from core.errors import AnimeBotError
    from service.clips import ClipReply
    from service.convert import ConversionReply
    from service.lifecycle.job import Job


@dataclass(frozen=True)
class OutletLimits:
    """What the reply target accepts: the result is encoded once to fit these."""

    max_bytes: int | None = None
    max_side: int | None = None
    formats: tuple[str, ...] = ("jpeg", "png", "webp")
    # The largest clip the platform takes from a bot (0: no limit); the bit rate fits it.
    clip_max_bytes: int = 0


class DeliveryFailed(Exception):
    """The result could not be handed over; `kind` is recorded on the request's usage row
    ("delivery_blocked", "delivery_forbidden", "delivery_failed", "result_too_large")."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail or kind)
        self.kind = kind


class Outlet(Protocol):
    @property
    def limits(self) -> OutletLimits: ...

    async def begin(self, job: Job) -> None:
        """Work on the job starts (a typing indicator); may raise DeliveryFailed when the
        target already refuses messages, so nothing is downloaded or converted for it."""

    async def notify(self, job: Job, status: QueueStatus) -> None:
        """Place in the queue and ETA (a status message)."""

    async def deliver(self, job: Job, reply: ConversionReply) -> None:
        """Hand the result over; DeliveryFailed when the platform refuses it."""

    async def frames(self, job: Job, done: int, total: int) -> None:
        """A clip's progress: `done` of `total` frames converted (a percentage shown)."""

    async def deliver_clip(self, job: Job, reply: ClipReply) -> None:
        """Hand a converted clip over, in the kind the person sent (a video, a round video
        note, a sticker, a GIF); DeliveryFailed when the platform refuses it."""

    async def fail(self, job: Job, error: AnimeBotError) -> None:
        """Tell the person, translated, why there is no result."""

    async def defer(self, job: Job) -> dict[str, Any]:
        """A shutdown put the job off: tell the person it will be done after the restart;
        returns what to remember in the job's outlet (e.g. the notice's message id)."""

    async def end(self, job: Job) -> None:
        """The job has its answer: tidy up (delete a status message). `job.outlet` is the
        durable row's last state, which may name a status message another process posted
        after this outlet was built."""


OutletFactory = Callable[["Job"], Outlet]


class UnknownOutlet(LookupError):
    pass


class Outlets:
    """Outlet factories by kind."""

    def __init__(self) -> None:
        self._factories: dict[str, OutletFactory] = {}

    def register(self, kind: str, factory: OutletFactory) -> None:
        self._factories[kind] = factory

    def kinds(self) -> list[str]:
        return sorted(self._factories)

    def outlet_for(self, job: Job) -> Outlet:
        factory = self._factories.get(job.outlet_kind)
        if factory is None:
            raise UnknownOutlet(f"no outlet registered for {job.outlet_kind!r}")
        return factory(job)


Fetcher = Callable[["Job"], Awaitable[bytes]]


class FetchFailed(Exception):
    """The platform would not give us the photo; `kind` goes on the usage row."""

    def __init__(self, kind: str = "download_failed", detail: str = "") -> None:
        super().__init__(detail or kind)
        self.kind = kind


class Fetchers:
    """How to get a job's photo, by source kind (a platform file needs that platform's token)."""

    def __init__(self) -> None:
        self._fetchers: dict[str, Fetcher] = {}

    def register(self, kind: str, fetcher: Fetcher) -> None:
        self._fetchers[kind] = fetcher

    async def fetch(self, job: Job) -> bytes:
        fetcher = self._fetchers.get(job.source_kind)
        if fetcher is None:
            raise FetchFailed("download_failed", f"no fetcher for {job.source_kind!r}")
        return await fetcher(job)
