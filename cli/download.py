"""Resumable, verified downloads of model files, with the standard library only.

The file streams to `<dest>.part`; a `.part` left by a dropped connection is resumed with an
HTTP Range request (by this run's retries or by running the command again). Nothing is trusted
until its SHA-1 matches: a mismatch deletes the file and refuses it.
"""

from __future__ import annotations

import http.client
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cli.common import os_error_text
from cli.errors import ChecksumMismatch, CliError, DownloadError
from models.published import FileDigests, file_digests
from service.reachability import unreachable_reason

CHUNK = 64 * 1024
MAX_BYTES = 512 * 1024 * 1024  # an AnimeGANv2 checkpoint is 8.6 MB; refuse anything absurd
TIMEOUT_S = 30.0
USER_AGENT = "animebot-models-pull/1"
SHA1_HEX = re.compile(r"^[0-9a-fA-F]{40}$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class _Interrupted(Exception):
    """A transfer that stopped early; the .part keeps what arrived."""


@dataclass
class _Counter:
    received: int = 0  # bytes transferred over every attempt, including cut-off ones


@dataclass(frozen=True)
class Downloaded:
    path: Path
    digests: FileDigests
    resumed_from: int  # bytes already in the .part when this run started
    fetched: int  # bytes transferred by this run
    reused: bool  # the finished file was already there and matched


def mirror_url(base: str, url: str) -> str:
    """The same path as `url`, on another host: mirrors copy the upstream layout."""
    path = urllib.parse.urlsplit(url).path
    return base.rstrip("/") + "/" + path.lstrip("/")


def sha1_matches(digests: FileDigests, expected: str) -> bool:
    """Publishers list git blob SHA-1s; people often paste `sha1sum` output. Either will do."""
    return expected.strip().lower() in (digests.git_blob_sha1, digests.sha1)


def download(
    url: str,
    dest: Path,
    *,
    sha1: str,
    retries: int = 3,
    timeout: float = TIMEOUT_S,
    backoff_s: float = 1.0,
    progress: bool = True,
) -> Downloaded:
    """Fetch `url` to `dest` and verify it, or raise a typed `CliError`."""
    check_url(url)
    if not SHA1_HEX.fullmatch(sha1.strip()):
        raise CliError(f"--sha1 must be 40 hexadecimal digits, not {sha1!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        digests = file_digests(dest)
        if sha1_matches(digests, sha1):
            return Downloaded(dest, digests, 0, 0, reused=True)
    part = dest.with_name(dest.name + ".part")
    resumed_from = part.stat().st_size if part.is_file() else 0
    counter = _Counter()
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, counter, timeout=timeout, progress=progress, label=dest.name)
            break
        except (_Interrupted, OSError, http.client.HTTPException) as exc:
            if attempt >= retries:
                have = part.stat().st_size if part.is_file() else 0
                unreachable = unreachable_reason(exc)
                if unreachable is not None and not have:
                    host = urllib.parse.urlsplit(url).hostname or url
                    raise DownloadError(
                        f"cannot reach {host} ({unreachable}): check the network connection, "
                        "or download from a host you can reach (--mirror BASE_URL, or --url)"
                    ) from exc
                raise DownloadError(
                    f"download of {url} stopped after {have:,} bytes ({_reason(exc)}); "
                    "run the same command again to resume"
                ) from exc
            time.sleep(backoff_s * attempt)  # the first retry is immediate
    digests = file_digests(part)
    if not sha1_matches(digests, sha1):
        part.unlink()
        raise ChecksumMismatch(
            f"{url} does not match its SHA-1 (got git blob {digests.git_blob_sha1}, "
            f"expected {sha1.strip().lower()}); the download was deleted and not used"
        )
    part.replace(dest)
    return Downloaded(dest, digests, resumed_from, counter.received, reused=False)


def check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"not an http(s) URL: {url!r}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, _Interrupted):
        return str(exc)
    unreachable = unreachable_reason(exc)
    if unreachable is not None:
        return unreachable
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, OSError):
        return os_error_text(exc.reason)
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect: {exc.reason}"
    if isinstance(exc, ConnectionError):
        return "the connection was closed"
    if isinstance(exc, OSError):
        return os_error_text(exc)
    return "the connection failed"


def _fetch(
    url: str, part: Path, counter: _Counter, *, timeout: float, progress: bool, label: str
) -> None:
    """One request: append to the .part from where it ends."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # nothing after the end: the .part is already whole
            return
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Interrupted(f"the server answered {exc.code} {exc.reason}") from exc
        raise DownloadError(f"{url}: the server answered {exc.code} {exc.reason}") from exc
    with response:
        if offset and response.status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != offset:  # not what we asked for: start again from zero
                part.unlink()
                raise _Interrupted("the server resumed at the wrong place; starting over")
        else:  # 200: the whole file (the server ignored or did not get a Range header)
            offset = 0
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = None if remaining is None else offset + remaining
        if total is not None and total > MAX_BYTES:
            part.unlink(missing_ok=True)
            raise CliError(f"{url} is {total:,} bytes; model files over {MAX_BYTES:,} are refused")
        received = 0
        with (
            part.open("ab" if offset else "wb") as fh,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                file=sys.stderr,
                disable=None if progress else True,  # None: only on a terminal
                leave=False,
            ) as bar,
        ):
            while chunk := response.read(CHUNK):
                fh.write(chunk)
                received += len(chunk)
                counter.received += len(chunk)
                bar.update(len(chunk))
                if offset + received > MAX_BYTES:
                    fh.close()
                    part.unlink()
                    raise CliError(f"{url} is over {MAX_BYTES:,} bytes; refused")
    if remaining is not None and received < remaining:
        raise _Interrupted(f"the connection closed {remaining - received:,} bytes early")


def _range_start(header: str) -> int | None:
    match = _CONTENT_RANGE.match(header.strip())
    return int(match.group(1)) if match else None
