"""Keep the bot token out of every log line.

The token is part of every Bot API URL (`https://api.telegram.org/bot<TOKEN>/sendPhoto`), and
httpx logs each request URL at INFO; file downloads carry it URL-encoded. Two layers: httpx
and httpcore are set to WARNING, and a log-record factory replaces the token (and its secret
part alone, which URL encoding leaves as it is) in every record (message, arguments and
traceback text) before any handler or formatter sees it, whichever logger or handler is used.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

REDACTED = "[redacted]"
_NOISY_LOGGERS = ("httpx", "httpcore")
_FROZEN_LOGGERS = ("telegram", "httpx", "httpcore")

_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False
_previous_factory = logging.getLogRecordFactory()


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):  # the whole token first
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _contains_secret(text: str) -> bool:
    return any(secret in text for secret in _secrets)


def _factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _previous_factory(*args, **kwargs)
    if not _secrets:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to the handler to report
        return record
    if _contains_secret(message) or (record.args and record.name.startswith(_FROZEN_LOGGERS)):
        # PTB logs API results and then fills in file URLs (token included) in the same
        # objects: render those messages now, so a handler that formats later sees no token.
        record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        if _contains_secret(text):
            record.exc_text = redact(text)
    if record.stack_info and _contains_secret(record.stack_info):
        record.stack_info = redact(record.stack_info)
    return record


def protect_token(token: str) -> None:
    """Redact `token` from all log records of this process from now on (idempotent)."""
    global _installed, _previous_factory
    if not token:
        return
    secret = token.split(":", 1)[-1]  # the bot id before ":" is public; this part is not
    with _lock:
        _secrets.add(token)
        if len(secret) >= 8:  # also where the token appears URL-encoded ("123%3Asecret")
            _secrets.add(secret)
        if not _installed:
            _previous_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_factory)
            _installed = True
    for name in _NOISY_LOGGERS:  # set on the loggers themselves: a later basicConfig(INFO)
        logger = logging.getLogger(name)  # on the root must not turn request logging on
        if logger.level < logging.WARNING:  # NOTSET included
            logger.setLevel(logging.WARNING)
