"""The reasons the lifecycle itself gives a person (the service has its own): a photo the
platform would not hand over, a result it would not take, a job left by an earlier process
that is past saving. Each code has its translated text in i18n/."""

from __future__ import annotations

from core.errors import AnimeBotError


class DownloadFailed(AnimeBotError):
    """The platform would not give us the photo (after retries)."""

    code = "download_failed"


class DeliveryError(AnimeBotError):
    """The result could not be handed over (after retries); `request_id` is the reference."""

    code = "delivery_failed"

    def __init__(self, kind: str, request_id: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.request_id = request_id


class GaveUp(AnimeBotError):
    """Tried MAX_ATTEMPTS times (each start crashed on it): given up."""

    code = "gave_up"


class Expired(AnimeBotError):
    """Too old to answer (a platform token expired)."""

    code = "expired"
