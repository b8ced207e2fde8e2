"""Blocking file helpers for the cache directory; callers run them via `asyncio.to_thread`.

Files are written to a temporary name in the target directory and `os.replace`d into place,
so a reader sees the old file, the new file or no file, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

TEMP_PREFIX = ".tmp-"
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,199}")


def check_key(key: str) -> None:
    """Keys become file names: allow only a safe alphabet (hex digests are ideal)."""
    if not _SAFE_KEY.fullmatch(key):
        raise ValueError(
            "cache key must be 3-200 characters of [A-Za-z0-9._-], not starting with "
            f"'.', '_' or '-' (hash composite keys first); got {key!r}"
        )


def relative_path(key: str) -> str:
    """Where a key lives under the cache dir: two-character shard, then the key."""
    check_key(key)
    return f"{key[:2]}/{key}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory and `os.replace`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_exact(path: Path, size: int) -> bytes | None:
    """The file's bytes, or None if it is gone or not the recorded size (truncated/replaced)."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return data if len(data) == size else None


def unlink_all(paths: Iterable[Path]) -> int:
    """Delete files, ignoring ones already gone; returns how many were removed."""
    removed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def sweep_orphans(root: Path, known: set[str], *, older_than: float) -> int:
    """Delete files under `root` (shard/key layout) that no row knows and that are older
    than `older_than` (unix seconds) — leftovers of a crash between file and row writes.

    The age limit keeps a concurrent `put`, which writes the file before its row, safe.
    """
    if not root.is_dir():
        return 0
    removed = 0
    for shard in root.iterdir():
        if not shard.is_dir() or shard.is_symlink():
            continue
        for entry in shard.iterdir():
            rel = f"{shard.name}/{entry.name}"
            if rel in known or not entry.is_file():
                continue
            try:
                if entry.stat().st_mtime >= older_than:
                    continue
                entry.unlink()
            except FileNotFoundError:
                continue
            removed += 1
    # Empty shard directories stay: removing one could race a concurrent put's mkstemp.
    return removed
