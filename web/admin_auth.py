"""Who may open the dashboard, and how guessing the admin token is slowed down.

- Sessions: a sign-in creates a random session id (the HttpOnly, SameSite=Strict cookie) kept
  in a server-side store with its expiry; sign-out deletes it, so a copied cookie stops working
  at once. The store lives in memory: a restart signs everyone out.
- Failed attempts, through the sign-in form and through `Authorization: Bearer`, are counted
  per client address (X-Forwarded-For is believed only from ANIMEBOT_TRUSTED_PROXIES):
  `ATTEMPT_BURST` at once, then one every 10 s. Only failures count: a right token gives its
  attempt back. While an address is locked, every attempt from it is answered 429 without
  the token being looked at, so guessing there learns nothing.
- A browser that signed in before carries a signed "device" cookie; its sign-ins are counted
  per device instead of per address, so someone guessing from the same address (a shared
  network, a proxy without ANIMEBOT_TRUSTED_PROXIES) cannot lock the owner out.
- Sign-in and sign-out refuse cross-site requests (`Sec-Fetch-Site`, `Origin`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from urllib.parse import urlsplit

from aiohttp import web

from service.ratelimit import RateLimiter

ADMIN_COOKIE = "animebot_admin"
DEVICE_COOKIE = "animebot_admin_device"
SESSION_S = 12 * 3600
DEVICE_S = 365 * 86400
MAX_SESSIONS = 1000
ATTEMPT_BURST = 5
ATTEMPTS_PER_MINUTE = 6.0
_DEVICE = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([0-9a-f]{32})$")
_SAME_SITE = {"same-origin", "none"}  # "none": typed into the address bar, a bookmark


class Verdict(Enum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"


class AdminAuth:
    """The dashboard's sessions, device cookies and attempt counting for one token."""

    def __init__(
        self,
        token: str,
        device_key: bytes,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token.encode()
        self._device_key = device_key
        self._clock = clock
        # SHA-256 of each session id -> expiry (epoch seconds), oldest first.
        self._sessions: OrderedDict[str, float] = OrderedDict()
        self._failures = RateLimiter(ATTEMPT_BURST, ATTEMPTS_PER_MINUTE, clock=monotonic)

    # -- the token ---------------------------------------------------------------------------

    def check_token(self, bucket: str, given: str) -> tuple[Verdict, float]:
        """Judge one attempt counted under `bucket`: (verdict, seconds to wait when locked)."""
        wait = self._failures.try_acquire(bucket)
        if wait > 0:
            return Verdict.LOCKED, wait
        if self._token and hmac.compare_digest(given.strip().encode(), self._token):
            self._failures.refund(bucket)  # only failures count
            return Verdict.OK, 0.0
        return Verdict.WRONG, 0.0

    # -- sessions ----------------------------------------------------------------------------

    @staticmethod
    def _key(session_id: str) -> str:
        return hashlib.sha256(session_id.encode()).hexdigest()

    def new_session(self) -> str:
        now = self._clock()
        for key, expires in list(self._sessions.items()):
            if expires <= now:
                del self._sessions[key]
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        session_id = secrets.token_urlsafe(32)
        self._sessions[self._key(session_id)] = now + SESSION_S
        return session_id

    def session_valid(self, session_id: str) -> bool:
        if not session_id:
            return False
        expires = self._sessions.get(self._key(session_id))
        if expires is None:
            return False
        if expires <= self._clock():
            self._sessions.pop(self._key(session_id), None)
            return False
        return True

    def end_session(self, session_id: str) -> None:
        self._sessions.pop(self._key(session_id), None)

    # -- devices -----------------------------------------------------------------------------

    def _signature(self, device_id: str) -> str:
        message = f"animebot-admin-device\x00{device_id}".encode()
        return hmac.new(self._device_key, message, hashlib.sha256).hexdigest()[:32]

    def new_device(self) -> str:
        device_id = secrets.token_urlsafe(18)
        return f"{device_id}.{self._signature(device_id)}"

    def device(self, value: str) -> str | None:
        """The id of a device cookie this server issued, else None."""
        match = _DEVICE.match(value)
        if match is None:
            return None
        device_id, signature = match.groups()
        return device_id if hmac.compare_digest(signature, self._signature(device_id)) else None


def cross_site(request: web.Request, public_url: str = "") -> bool:
    """True for a request a browser sent on behalf of another site.

    `Sec-Fetch-Site` when the browser sends it; otherwise `Origin`, which must name this
    server (its Host, or ANIMEBOT_PUBLIC_URL). No header at all: not a browser form post."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        # A browser's own word, which no page can set. It must decide alone: with the page's
        # `Referrer-Policy: no-referrer`, browsers send `Origin: null` on same-origin form posts.
        return fetch_site.strip().lower() not in _SAME_SITE
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    if origin.strip().lower() == "null":  # sandboxed frames, redirects across sites
        return True
    allowed = {request.host.lower()}
    if public_url:
        allowed.add(urlsplit(public_url).netloc.lower())
    return urlsplit(origin.strip()).netloc.lower() not in allowed
