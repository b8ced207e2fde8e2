"""The address of the client behind a request, believing X-Forwarded-For only from proxies
the operator named (ANIMEBOT_TRUSTED_PROXIES).

Behind a reverse proxy every connection comes from the proxy, so per-address limits (cookie-less
visitors, failed admin sign-ins) would put every client in one bucket. A proxy appends the
address it received the request from to X-Forwarded-For; entries further left were written by
the client or by earlier proxies and may be forged. So, when the peer is a trusted proxy, the
client is the right-most entry that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from service.settings import Network

UNKNOWN = "unknown"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[Network]
) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(request: web.Request, proxies: Sequence[Network]) -> str:
    """The client's IP address as text (`unknown` when there is none to be had)."""
    peer = _ip(request.remote or "")
    if peer is None:
        return request.remote or UNKNOWN
    if not proxies or not _trusted(peer, proxies):
        return str(peer)
    hops = [
        h for header in request.headers.getall("X-Forwarded-For", []) for h in header.split(",")
    ]
    client = peer
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:  # garbage written by someone: stop believing the header here
            break
        client = address
        if not _trusted(address, proxies):
            break
    return str(client)
