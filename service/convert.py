"""The conversion service: the one thing every front end calls.

`await service.convert(request)` turns a person's upload into an anime image, or refuses with a
typed reason. In order: rate limit, decode, cache, quota, fair queue, engine, cache store. Every
outcome, refusals and failures included, writes exactly one usage row (one per request id: a
job run again after a worker died replaces its row, see `storage.usage`).

Rate limits and the daily quota live in the database (`db.rates`, `db.quota.try_take`), each
check-and-take one statement, so they hold across every front end and worker sharing it.

Identical work is done once: uploads of the very same file being identified share one decode,
and requests for a result already being computed share that computation (`service.coalesce`;
each still writes its own row, as a cache hit). Memory is bounded: a photo is decoded in the
engine's narrow decode stage to identify it, and its pixels go straight on to a worker slot only
when one is free at once (at most one photo per worker waits that way); a job that has to wait
in the queue keeps the compressed upload and is decoded again inside its slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.engine import Conversion, Engine
from core.errors import ImageTooLarge, InputError, UnknownStyle
from core.imageio import DecodedImage
from service.admission import Admission
from service.coalesce import InFlight
from service.errors import (
    InputExpired,
    InternalError,
    Refusal,
    ShuttingDown,
)
from service.fairqueue import RESTART_RETRY_S, FairQueue, ProgressCallback
from service.jobs import JobStore
from service.metrics import ServiceMetrics
from service.settings import Settings
from storage import CacheEntry, Database, Failure, StatsSummary, UsageRecord, UserPrefs

log = logging.getLogger("animebot.service")

FORMATS = {"jpeg", "png", "webp"}
# After the grace period, what is still running gets this much longer to finish and answer
# (waiting jobs are turned away at once; conversions already in the engine cannot be stopped).
AFTER_GRACE_S = 5.0


def new_request_id() -> str:
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class ConversionRequest:
    platform: str  # "telegram", "discord", "web", ...
    user_id: str | int  # the platform's raw id; hashed before anything is stored
    image: bytes | None = None  # an upload, or ...
    input_key: str | None = None  # ... a photo uploaded earlier (buttons: "try another style")
    chat_id: str | int | None = None
    style: str | None = None  # None: the person's preference, else the default style
    faces: bool | None = None
    side_by_side: bool = False
    fmt: str = "jpeg"
    max_side: int | None = None
    max_bytes: int | None = None  # the reply target's size limit: encoded once to fit it
    is_admin: bool = False
    keep_input: bool = True  # cache the upload so buttons can re-use it without a re-upload
    on_progress: ProgressCallback | None = None
    request_id: str = field(default_factory=new_request_id)


# Uploads larger than this are hashed off the event loop (sha256 runs at ~0.5 GB/s).
HASH_INLINE_BYTES = 256 * 1024


@dataclass(frozen=True)
class _Source:
    input_key: str
    width: int
    height: int
    seen_at: float = field(default_factory=time.monotonic)
    raw: bytes | None = field(default=None, repr=False)  # the cached upload, for a later decode
    stored: bool = False  # the upload is in the input cache (buttons can re-use it)


class _Pixels:
    """Decoded pixels handed from identification straight to a worker slot, so a job that can
    start at once is not decoded twice. Reserved before decoding and counted, so at most one
    per worker exists; released when the job takes them, or drops them to wait in the queue."""

    def __init__(self, service: ConversionService) -> None:
        self._service = service
        self.decoded: DecodedImage | None = None
        self._held = True
        service._handoffs += 1

    def take(self) -> DecodedImage | None:
        decoded = self.decoded
        self.release()
        return decoded

    def release(self) -> None:
        self.decoded = None
        if self._held:
            self._held = False
            self._service._handoffs -= 1


@dataclass(frozen=True)
class _Computed:
    conversion: Conversion
    waited_ms: float


Identification = tuple[_Source, DecodedImage | None]


@dataclass(frozen=True)
class ConversionReply:
    data: bytes
    mime: str
    ext: str
    width: int
    height: int
    style: str
    faces: bool
    side_by_side: bool
    cache_hit: bool
    input_key: str
    result_key: str
    handle: str | None  # the platform's id of this result uploaded earlier (Telegram file_id)
    faces_found: int
    notes: tuple[str, ...]
    queue_wait_ms: float
    compute_ms: float
    total_ms: float
    timings: dict[str, float]
    request_id: str
    coalesced: bool = False  # shared another request's computation (also a cache_hit)


class ConversionService:
    def __init__(self, engine: Engine, db: Database, settings: Settings) -> None:
        self.engine, self.db, self.settings = engine, db, settings
        self.queue = FairQueue(settings.workers, settings.queue_max)
        self.metrics = ServiceMetrics()
        self.admission = Admission(db, settings, self.metrics)
        self.metrics.queue_waiting.set_function(lambda: self.queue.waiting)
        self.metrics.running.set_function(lambda: self.queue.running)
        # sha256(upload bytes) -> its pixel digest: a repeat of the very same file skips decoding.
        self._aliases: OrderedDict[str, _Source] = OrderedDict()
        self._alias_ttl_s = settings.input_ttl_hours * 3600 / 2
        self._closing = False
        self._deadline: float | None = None  # time.monotonic() when the grace period ends
        self._inflight: set[asyncio.Task[Any]] = set()
        self.jobs = JobStore(db)
        # result key -> the computation under way; (upload sha256, kept) -> its identification
        self.computing: InFlight[_Computed] = InFlight()
        self._identifying: dict[tuple[str, bool], asyncio.Task[Identification]] = {}
        self._handoffs = 0  # _Pixels alive

    # -- the main entry point ------------------------------------------------------------------

    async def convert(self, req: ConversionRequest) -> ConversionReply:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        started = time.perf_counter()
        user_hash = self.db.hash_id(req.platform, req.user_id)
        chat_hash = None if req.chat_id is None else self.db.hash_id(req.platform, req.chat_id)
        row: dict[str, Any] = {
            "platform": req.platform,
            "user_hash": user_hash,
            "chat_hash": chat_hash,
        }
        row["request_id"] = req.request_id
        try:
            if self._closing:
                raise ShuttingDown("shutting down", retry_after_s=RESTART_RETRY_S)
            reply = await self._convert(req, user_hash, row, started)
        except Refusal as exc:
            await self._record(row, "refused", exc.code)
            self.metrics.requests.labels(req.platform, "refused", exc.code).inc()
            raise
        except (InputError, UnknownStyle, InputExpired) as exc:
            await self._record(row, "error", exc.code)
            self.metrics.requests.labels(req.platform, "error", exc.code).inc()
            raise
        except asyncio.CancelledError:
            if self._closing:  # cut short by a shutdown: turned away, not an error
                await asyncio.shield(self._record(row, "refused", ShuttingDown.code))
            else:
                await asyncio.shield(self._record(row, "error", "cancelled"))
            raise
        except Exception as exc:
            log.exception("request %s failed", req.request_id)
            await self._record(row, "error", "internal")
            self.metrics.requests.labels(req.platform, "error", "internal").inc()
            raise InternalError(req.request_id) from exc
        finally:
            if task is not None:
                self._inflight.discard(task)
        await self._record(row, "ok", None)
        kind = "coalesced" if reply.coalesced else "cache" if reply.cache_hit else "computed"
        self.metrics.requests.labels(req.platform, "ok", kind).inc()
        return reply

    async def _convert(
        self, req: ConversionRequest, user_hash: str, row: dict[str, Any], started: float
    ) -> ConversionReply:
        prefs = await self.db.prefs.get(req.platform, user_hash)
        style = self._style(req.style or prefs.style)
        faces = (
            req.faces
            if req.faces is not None
            else (prefs.faces if prefs.faces is not None else True)
        )
        fmt = req.fmt if req.fmt in FORMATS else "jpeg"
        row.update(style=style, faces=faces, side_by_side=req.side_by_side)
        await self.admission.enter(user_hash, req.is_admin)
        if req.image is not None:
            row["input_bytes"] = len(req.image)
        source, pixels = await self._source(req, user_hash)
        try:
            row.update(input_w=source.width, input_h=source.height)
            input_key = source.input_key
            version = self.engine.model_version(style, faces)
            result_key = _key(
                input_key, version, req.side_by_side, fmt, req.max_side, req.max_bytes
            )
            hit = await self.db.cache.get(result_key)
            if hit is not None:
                await self.admission.cache_hit(req.platform, user_hash, req.is_admin, row, hit.size)
                handle = await self.db.cache.get_handle(result_key, req.platform)
                return _cached_reply(hit, req, style, faces, input_key, result_key, handle, started)
            job = self.computing.get(result_key)
            taken: str | None = None  # the UTC day a quota unit was taken on
            if job is None:  # nobody computes this result yet: this request does
                taken = await self.admission.take(user_hash, req.is_admin)
                job = self.computing.get(result_key)  # the quota take awaited: look again
                if job is not None:
                    await self.admission.give_back(user_hash, taken)  # joins: free
            if job is None:
                handed, pixels = pixels, None
                day = taken
                job = self.computing.start(
                    result_key,
                    req.request_id,
                    lambda report: self._compute(
                        req, user_hash, source, handed, style, faces, fmt, result_key, report, day
                    ),
                )
            joined = time.perf_counter()
            outcome, computed = await job.result(req.request_id, req.on_progress)
        finally:
            if pixels is not None:
                pixels.release()
        conversion = outcome.conversion
        row["output_bytes"] = len(conversion.image.data)
        if computed:
            row.update(queue_wait_ms=outcome.waited_ms, compute_ms=conversion.timings.total_ms)
            return _reply(conversion, req, faces, input_key, result_key, outcome.waited_ms, started)
        # Another request's computation answered this one: free like a cache hit.
        await self.admission.free(user_hash, req.is_admin)
        self.metrics.cache_hits.labels(req.platform).inc()
        waited_ms = (time.perf_counter() - joined) * 1000
        row.update(cache_hit=True, queue_wait_ms=waited_ms, compute_ms=0.0)
        return _reply(
            conversion, req, faces, input_key, result_key, waited_ms, started, coalesced=True
        )

    async def _compute(
        self,
        req: ConversionRequest,
        user_hash: str,
        source: _Source,
        pixels: _Pixels | None,
        style: str,
        faces: bool,
        fmt: str,
        result_key: str,
        report: ProgressCallback,
        quota_day: str | None = None,
    ) -> _Computed:
        """The work of one result (a `SharedJob`): the fair queue under the requester who
        started it, the engine and the cache store. The quota unit that requester took
        (`quota_day`) is given back when no result comes of it."""
        try:
            return await self._compute_result(
                req, user_hash, source, pixels, style, faces, fmt, result_key, report
            )
        except BaseException:
            await asyncio.shield(self.admission.give_back(user_hash, quota_day))
            raise

    async def _compute_result(
        self,
        req: ConversionRequest,
        user_hash: str,
        source: _Source,
        pixels: _Pixels | None,
        style: str,
        faces: bool,
        fmt: str,
        result_key: str,
        report: ProgressCallback,
    ) -> _Computed:
        try:
            if pixels is not None and not self._starts_now():
                pixels.release()  # it will wait in the queue: with the bytes, not the pixels
            async with self.queue.slot(user_hash, report) as waited_ms:
                self.metrics.queue_wait_seconds.observe(waited_ms / 1000)
                decoded = None if pixels is None else pixels.take()
                image = decoded or await self._raw(req, source)
                del decoded
                conversion = await self.engine.convert(
                    image,
                    style=style,
                    faces=faces,
                    side_by_side=req.side_by_side,
                    fmt=fmt,
                    max_side=req.max_side,
                    max_bytes=req.max_bytes,
                )
                del image
        finally:
            if pixels is not None:
                pixels.release()
        self.metrics.compute_seconds.labels(style).observe(conversion.timings.total_ms / 1000)
        await self._store_result(result_key, conversion, user_hash)
        return _Computed(conversion, waited_ms)

    def _starts_now(self) -> bool:
        """Whether a job entering the fair queue now gets a worker without waiting (the
        queue's own admission rule)."""
        return self.queue.running < self.queue.workers and self.queue.waiting == 0

    def _reserve_pixels(self) -> _Pixels | None:
        """A handoff for a photo about to be identified, if it could start at once and fewer
        photos than workers are already handed on that way."""
        if self.queue.waiting or self.queue.running + self._handoffs >= self.queue.workers:
            return None
        return _Pixels(self)

    def _style(self, wanted: str | None) -> str:
        names = self.engine.registry.names()
        if wanted and wanted in names:
            return wanted
        if wanted:
            raise UnknownStyle(wanted, names)
        default = self.settings.default_style
        return default if default in names else self.engine.registry.default_style()

    async def _source(
        self, req: ConversionRequest, user_hash: str
    ) -> tuple[_Source, _Pixels | None]:
        """Identify the input by its pixels, with the decoded pixels when the job may start at
        once. A byte-identical repeat of an upload seen before is identified without decoding
        it, so a cache hit touches no pixels at all; identical uploads arriving together are
        decoded once."""
        if req.image is None:
            if not req.input_key:
                raise ValueError("a request needs image bytes or an input_key")
            entry = await self.db.cache.get(_input_cache_key(req.input_key))
            if entry is None:
                raise InputExpired("the original photo is no longer cached")
            if "width" in entry.meta:  # decoded only if the result is not cached already
                width, height = int(entry.meta["width"]), int(entry.meta["height"])
            else:
                found = await self.engine.identify(entry.data)
                width, height = found.width, found.height
            return _Source(req.input_key, width, height, raw=entry.data), None
        if len(req.image) > self.settings.max_upload_bytes:
            raise ImageTooLarge("upload too large", limit=self.settings.max_upload_bytes)
        bytes_key = await _sha256(req.image)
        known = self._aliases.get(bytes_key)
        # Trust an alias only while the cached upload it implies is surely still there.
        if known is not None and time.monotonic() - known.seen_at < self._alias_ttl_s:
            self._aliases.move_to_end(bytes_key)
            if req.keep_input and not known.stored:  # seen on the web page, wanted by a bot
                await self._store_input(known.input_key, req.image, user_hash, known)
                known = self._alias(bytes_key, replace(known, stored=True))
            return known, None
        flight = (bytes_key, req.keep_input)
        task = self._identifying.get(flight)
        pixels = None
        if task is None:
            pixels = self._reserve_pixels()
            task = asyncio.ensure_future(
                self._identify(req.image, req.keep_input, user_hash, bytes_key, pixels is not None)
            )
            self._identifying[flight] = task
            task.add_done_callback(lambda done: self._identified(flight, done))
        try:
            source, decoded = await asyncio.shield(task)
        except BaseException:
            if pixels is not None:
                pixels.release()
            raise
        if pixels is not None:
            pixels.decoded = decoded
            if decoded is None:  # too large to hand on: decoded again inside its slot
                pixels.release()
                pixels = None
        return source, pixels

    async def _identify(
        self, image: bytes, keep_input: bool, user_hash: str, bytes_key: str, keep: bool
    ) -> Identification:
        """Decode and hash an upload (in the engine's narrow decode stage), store it for the
        buttons when asked. A task of its own, shared by identical uploads arriving together:
        it finishes even if the request that started it is cancelled."""
        limit = self.engine.config.whole_max_pixels if keep else 0
        found = await self.engine.identify(image, keep_max_pixels=limit)
        source = _Source(found.digest, found.width, found.height)
        if keep_input:
            await self._store_input(found.digest, image, user_hash, source)
            source = replace(source, stored=True)
        self._alias(bytes_key, source)
        return source, found.decoded

    def _identified(self, flight: tuple[str, bool], task: asyncio.Task[Identification]) -> None:
        if self._identifying.get(flight) is task:
            del self._identifying[flight]
        if not task.cancelled():
            task.exception()  # retrieved: whoever still waited got it

    def _alias(self, bytes_key: str, source: _Source) -> _Source:
        self._aliases[bytes_key] = source
        self._aliases.move_to_end(bytes_key)
        while len(self._aliases) > 10_000:
            self._aliases.popitem(last=False)
        return source

    async def _store_input(
        self, input_key: str, image: bytes, user_hash: str, source: _Source
    ) -> None:
        await self.db.cache.put(
            _input_cache_key(input_key),
            image,
            kind="input",
            mime="application/octet-stream",
            owner_hash=user_hash,
            meta={"width": source.width, "height": source.height},
        )

    async def _raw(self, req: ConversionRequest, source: _Source) -> bytes:
        """The compressed photo of a job, decoded inside its worker slot."""
        data = req.image if req.image is not None else source.raw
        if data is None:
            entry = await self.db.cache.get(_input_cache_key(source.input_key))
            if entry is None:
                raise InputExpired("the original photo is no longer cached")
            data = entry.data
        return data

    async def _store_result(self, key: str, conversion: Conversion, owner: str) -> None:
        image = conversion.image
        meta = {
            "ext": image.ext,
            "width": image.width,
            "height": image.height,
            "style": conversion.style,
            "faces_found": conversion.faces_found,
            "notes": list(conversion.notes),
            "model_version": conversion.model_version,
        }
        await self.db.cache.put(
            key, image.data, kind="result", mime=image.mime, owner_hash=owner, meta=meta
        )

    async def _record(self, row: dict[str, Any], status: str, error_kind: str | None) -> None:
        try:
            # A request turned away by a shutdown may be finished after the restart: that
            # attempt adds its outcome beside this row (storage.usage).
            once = error_kind != ShuttingDown.code
            record = UsageRecord(status=status, error_kind=error_kind, once=once, **row)  # type: ignore[arg-type]
            await self.db.usage.record(record)
        except Exception:  # never let bookkeeping turn a reply into a failure
            log.exception("could not record usage for request %s", row.get("request_id"))

    # -- everything else front ends need --------------------------------------------------------

    async def record_outcome(
        self,
        platform: str,
        user_id: str | int,
        status: str,
        kind: str,
        *,
        chat_id: str | int | None = None,
        request_id: str | None = None,
    ) -> None:
        """The one usage row of a request decided outside a conversion (the job runner: a
        photo too large to fetch, a download that failed, a chat that refuses the bot)."""
        await self._record_outside(platform, user_id, status, kind, chat_id, request_id)

    async def update_outcome(
        self, platform: str, request_id: str, status: str, kind: str | None
    ) -> None:
        """A request's outcome changed after its row was written (its result could not be
        delivered): that row is updated, never a second one written."""
        try:
            found = await self.db.usage.update_outcome(request_id, status, kind)  # type: ignore[arg-type]
        except Exception:
            log.exception("could not update the usage of request %s", request_id)
            return
        if not found:
            log.warning("request %s: no usage row to update (%s)", request_id, kind)

    def pending_tasks(self) -> set[asyncio.Task[Any]]:
        """Conversions in flight (a drain waits for them)."""
        return {t for t in self._inflight if not t.done()}

    async def _record_outside(
        self,
        platform: str,
        user_id: str | int,
        outcome: str,
        kind: str,
        chat_id: str | int | None,
        request_id: str | None,
    ) -> None:
        """One usage row and one metric for an outcome decided outside a conversion."""
        row: dict[str, Any] = {
            "platform": platform,
            "user_hash": self.db.hash_id(platform, user_id),
            "chat_hash": None if chat_id is None else self.db.hash_id(platform, chat_id),
            "request_id": request_id,
        }
        await self._record(row, outcome, kind)
        self.metrics.requests.labels(platform, outcome, kind).inc()

    async def keep_upload(self, platform: str, user_id: str | int, data: bytes) -> str:
        """Put an upload in the shared input cache (bounded by the cache budget, deleted after
        ANIMEBOT_INPUT_TTL_HOURS) so a worker on another machine can read it; its input key."""
        input_key = f"up-{await _sha256(data)}"
        await self.db.cache.put(
            _input_cache_key(input_key),
            data,
            kind="input",
            mime="application/octet-stream",
            owner_hash=self.db.hash_id(platform, user_id),
            meta={},
        )
        return input_key

    async def remember_handle(self, result_key: str, platform: str, handle: str) -> None:
        """Keep the platform's id of an uploaded result (Telegram file_id) for repeat replies."""
        await self.db.cache.set_handle(result_key, platform, handle)

    async def prefs(self, platform: str, user_id: str | int) -> UserPrefs:
        return await self.db.prefs.get(platform, self.db.hash_id(platform, user_id))

    async def set_prefs(self, platform: str, user_id: str | int, **changes: Any) -> UserPrefs:
        if changes.get("style") is not None:
            self._style(changes["style"])  # refuse unknown styles before storing them
        return await self.db.prefs.update(platform, self.db.hash_id(platform, user_id), **changes)

    async def forget(self, platform: str, user_id: str | int) -> dict[str, int]:
        user_hash = self.db.hash_id(platform, user_id)
        self._aliases.clear()  # cannot tell which belong to this person: drop them all
        return await self.db.forget(platform, user_hash)

    async def stats(self, days: int = 30) -> StatsSummary:
        return await self.db.stats.summary(days=days)

    async def recent_failures(self, limit: int) -> list[Failure]:
        """The latest failures (the dashboard's list)."""
        return await self.db.stats.recent_failures(limit)

    def derive_key(self, purpose: str) -> bytes:
        """A secret for `purpose` (signing cookies) derived from the install's id key."""
        return self.db.derive_key(purpose)

    async def check_storage(self) -> None:
        """Raises when the database does not answer (readiness probes: they bound it with
        their timeout). One round trip on either engine (`Database.ping`)."""
        await self.db.ping()

    async def stats_chart(self, days: int = 30) -> bytes:
        from service.charts import render_stats_png

        summary = await self.stats(days)
        return await asyncio.to_thread(
            render_stats_png, summary, title=f"animebot: last {days} days"
        )

    def is_admin(self, platform: str, user_id: str | int) -> bool:
        admins = {
            "telegram": self.settings.telegram_admins,
            "discord": self.settings.discord_admins,
        }
        return str(user_id) in admins.get(platform, frozenset())

    def styles(self) -> list[str]:
        return self.engine.registry.names()

    def style_titles(self) -> dict[str, str]:
        """Whole-image styles a person can ask for, name -> the model's own title, in the
        registry's order (front ends translate the names they know)."""
        return {spec.name: spec.title for spec in self.engine.registry.scene_styles()}

    def style_preview(self, name: str) -> Path | None:
        """A whole-image style's small preview image, if it has one (looked up by name only)."""
        spec = next((s for s in self.engine.registry.scene_styles() if s.name == name), None)
        return None if spec is None else spec.preview

    def style_for(self, wanted: str | None) -> str:
        """The style a request gets: `wanted` if installed (UnknownStyle if not), else the
        default."""
        return self._style(wanted)

    def default_style(self) -> str:
        """The style used for people who have not chosen one."""
        return self._style(None)

    @property
    def closing(self) -> bool:
        """True once shutdown began: new requests are refused (readiness probes report it)."""
        return self._closing

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def start_grace(self, grace_s: float | None = None) -> None:
        """Start the one shutdown grace period every part of the process shares (default
        ANIMEBOT_SHUTDOWN_GRACE_S). Idempotent: the first call sets the deadline."""
        if self._deadline is None:
            grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
            self._deadline = time.monotonic() + max(0.0, grace)

    def begin_shutdown(self, grace_s: float | None = None) -> None:
        """Start the grace period and refuse new requests from now on (ShuttingDown, with a
        usage row); requests already in the service go on."""
        self.start_grace(grace_s)
        self._closing = True

    def grace_left(self) -> float:
        """Seconds left of the shutdown grace period (starting it if needed)."""
        self.start_grace()
        assert self._deadline is not None
        return max(0.0, self._deadline - time.monotonic())

    def final_left(self) -> float:
        """Seconds left until AFTER_GRACE_S past the end of the grace period: how long work
        already running may still take to answer."""
        self.start_grace()
        assert self._deadline is not None
        return max(0.0, self._deadline + AFTER_GRACE_S - time.monotonic())

    def end_grace(self) -> None:
        """The grace period is over: new requests are refused and every request still
        waiting in the queue is turned away with ShuttingDown (the bots keep those jobs for
        after the restart)."""
        self.begin_shutdown()
        if not self.queue.closed:
            self.queue.close()

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Stop accepting new requests and let those in flight finish within the grace period
        (`timeout_s`, or ANIMEBOT_SHUTDOWN_GRACE_S, counted from the first call). Then turn
        away whatever still waits in the queue (ShuttingDown: bots keep those jobs for after
        the restart and tell the person) and give the rest at most AFTER_GRACE_S to answer.
        True when everything finished."""
        self.begin_shutdown(timeout_s)
        pending = {t for t in self._inflight if not t.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.grace_left())
        self.end_grace()
        if pending:
            log.info("shutdown: %d request(s) still in flight after the grace", len(pending))
            _, pending = await asyncio.wait(pending, timeout=self.final_left())
        return not pending


async def _sha256(data: bytes) -> str:
    if len(data) <= HASH_INLINE_BYTES:
        return hashlib.sha256(data).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


def _key(
    input_key: str,
    version: str,
    side_by_side: bool,
    fmt: str,
    max_side: int | None,
    max_bytes: int | None = None,
) -> str:
    raw = f"{input_key}|{version}|sbs={int(side_by_side)}|{fmt}|max={max_side or 0}"
    if max_bytes:  # only then: keys of results cached before this option stay valid
        raw += f"|bytes={max_bytes}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _input_cache_key(input_key: str) -> str:
    return f"in-{input_key}"


def _reply(
    c: Conversion,
    req: ConversionRequest,
    faces: bool,
    input_key: str,
    result_key: str,
    waited_ms: float,
    started: float,
    *,
    coalesced: bool = False,
) -> ConversionReply:
    return ConversionReply(
        data=c.image.data,
        mime=c.image.mime,
        ext=c.image.ext,
        width=c.image.width,
        height=c.image.height,
        style=c.style,
        faces=faces,
        side_by_side=req.side_by_side,
        cache_hit=coalesced,
        input_key=input_key,
        result_key=result_key,
        handle=None,
        faces_found=c.faces_found,
        notes=c.notes,
        queue_wait_ms=waited_ms,
        compute_ms=0.0 if coalesced else c.timings.total_ms,
        total_ms=(time.perf_counter() - started) * 1000,
        timings={} if coalesced else c.timings.as_dict(),
        request_id=req.request_id,
        coalesced=coalesced,
    )


def _cached_reply(
    hit: CacheEntry,
    req: ConversionRequest,
    style: str,
    faces: bool,
    input_key: str,
    result_key: str,
    handle: str | None,
    started: float,
) -> ConversionReply:
    meta = hit.meta
    return ConversionReply(
        data=hit.data,
        mime=hit.mime,
        ext=str(meta.get("ext", "jpg")),
        width=int(meta.get("width", 0)),
        height=int(meta.get("height", 0)),
        style=style,
        faces=faces,
        side_by_side=req.side_by_side,
        cache_hit=True,
        input_key=input_key,
        result_key=result_key,
        handle=handle,
        faces_found=int(meta.get("faces_found", 0)),
        notes=tuple(meta.get("notes", ())),
        queue_wait_ms=0.0,
        compute_ms=0.0,
        total_ms=(time.perf_counter() - started) * 1000,
        timings={},
        request_id=req.request_id,
    )
