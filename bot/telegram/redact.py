"""Keep the bot token out of every log line.

The token is part of every Bot API URL (`https://api.telegram.org/bot<TOKEN>/sendPhoto`), and
httpx logs each request URL at INFO; file downloads carry it URL-encoded. The process-wide
scrubber (`service.logprivacy`) replaces the token, and its secret part alone (which URL
encoding leaves as it is), in every record of every logger, together with people's ids and
names; httpx and httpcore are kept at WARNING.
"""

from __future__ import annotations

from service.logprivacy import REDACTED, protect, quiet_http_clients, scrub

__all__ = ["REDACTED", "protect_token", "redact"]


def redact(text: str) -> str:
    return scrub(text)


def protect_token(token: str) -> None:
    """Redact `token` from all log records of this process from now on (idempotent)."""
    if not token:
        return
    secret = token.split(":", 1)[-1]  # the bot id before ":" is public; this part is not
    # The secret part alone is also where the token appears URL-encoded ("123%3Asecret").
    protect(token, *([secret] if len(secret) >= 8 else []))
    quiet_http_clients()  # set on the loggers: a later basicConfig(INFO) must not undo it
