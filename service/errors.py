"""Refusals the service answers instead of converting. Each has a stable `code` that front ends
translate (i18n key `error.<code>`) and a `retry_after_s` where waiting helps."""

from __future__ import annotations

import math

from core.errors import AnimeBotError


class Refusal(AnimeBotError):
    code = "refused"

    def __init__(self, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = max(0.0, retry_after_s)

    @property
    def retry_after_whole_s(self) -> int:
        return max(1, math.ceil(self.retry_after_s))


class Busy(Refusal):
    """The queue is full (or the service is shutting down)."""

    code = "busy"


class ShuttingDown(Busy):
    """The process is stopping: new work is refused, and work still waiting when the grace
    period ends is turned away (bots keep their durable jobs and finish them after the
    restart). A `Busy`, so callers that handle "busy" keep working; its own message says
    "restarting"."""

    code = "shutting_down"


class RateLimited(Refusal):
    code = "rate_limited"


class QuotaExceeded(Refusal):
    code = "quota"


class InputExpired(AnimeBotError):
    """A button refers to a photo the cache no longer holds (expired, evicted or forgotten)."""

    code = "input_expired"


class InternalError(AnimeBotError):
    """Something failed on our side; `request_id` is shown to the user and logged with the
    traceback so an operator can find it."""

    code = "internal"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"internal error, reference {request_id}")
        self.request_id = request_id
