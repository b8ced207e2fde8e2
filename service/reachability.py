"""Why a connection could not be made, in words, for the one-line start-up and download errors.

HTTP clients wrap the operating system's error in their own (httpx.ConnectError inside
telegram.error.NetworkError, aiohttp's ClientConnectorError, urllib's URLError); the reason a
person can act on (no DNS, refused, no route, timed out) is the OSError underneath.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the errors it wraps (`reason`, `os_error`, causes, contexts), each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for attr in ("reason", "os_error", "__cause__", "__context__"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)


def unreachable_reason(exc: BaseException) -> str | None:
    """Why no connection could be made at all, or None when `exc` is not about that (for
    example a connection that dropped in the middle of a transfer)."""
    for error in _chain(exc):
        if isinstance(error, socket.gaierror):
            return "the host name could not be resolved"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, TimeoutError):
            return "no answer: timed out"
        if isinstance(error, ssl.SSLError):
            return "the secure connection failed"
        if isinstance(error, OSError) and error.errno in _NO_ROUTE:
            return "no route to the host"
    return None
