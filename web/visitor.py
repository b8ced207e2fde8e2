"""Who a web request counts as, for the per-person limits and the daily quota.

A person is a random anonymous cookie that this server signed (HMAC-SHA256 under a key of the
install). Anything else (no cookie, an invented or an altered one) counts as cookie-less, and
cookie-less requests share one identity per client address, so inventing a cookie per request
does not escape the limits. New cookies are handed out sparingly per address (`ISSUE_BURST` at
once, then `ISSUE_PER_HOUR`), so collecting fresh signed ones does not either; a browser keeps
its cookie for a year, so people never notice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from service.ratelimit import RateLimiter

UID_COOKIE = "animebot_uid"
UID_MAX_AGE_S = 365 * 86400
ISSUE_BURST = 20
ISSUE_PER_HOUR = 20.0
_VALUE = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([0-9a-f]{32})$")


class Visitors:
    """Signs and checks visitor cookies; limits how many each address is given."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._key = key
        self._issued = RateLimiter(ISSUE_BURST, ISSUE_PER_HOUR / 60.0, clock=clock)

    def _signature(self, uid: str) -> str:
        return hmac.new(self._key, f"animebot-uid\x00{uid}".encode(), hashlib.sha256).hexdigest()[
            :32
        ]

    def sign(self, uid: str) -> str:
        return f"{uid}.{self._signature(uid)}"

    def verify(self, value: str) -> str | None:
        """The id in a cookie this server issued, else None."""
        match = _VALUE.match(value)
        if match is None:
            return None
        uid, signature = match.groups()
        return uid if hmac.compare_digest(signature, self._signature(uid)) else None

    def identify(self, request: web.Request, address: str) -> tuple[str, str | None]:
        """(the id the request is counted under, a new signed cookie value to set or None)."""
        uid = self.verify(request.cookies.get(UID_COOKIE, ""))
        if uid is not None:
            return f"c:{uid}", None
        if self._issued.try_acquire(address) > 0:
            return f"ip:{address}", None  # enough new cookies for this address for now
        return f"ip:{address}", self.sign(secrets.token_urlsafe(18))


def set_cookie(response: web.StreamResponse, value: str) -> None:
    response.set_cookie(
        UID_COOKIE, value, max_age=UID_MAX_AGE_S, path="/", httponly=True, samesite="Lax"
    )
