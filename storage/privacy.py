"""Pseudonymous ids: HMAC-SHA256 under a random per-install secret kept in `meta`.

Raw platform ids never reach the database. Without the secret a hash cannot be linked back
to an account (ids are small integers, so a plain SHA-256 would be trivially reversible).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from storage.clock import now_ms
from storage.connection import SqlConnection

SECRET_KEY = "install_secret"
CREATED_KEY = "installed_at"


async def load_or_create_secret(sql: SqlConnection) -> bytes:
    """The install secret, created on first open. INSERT OR IGNORE makes two processes
    opening a fresh file at once agree on one secret."""
    async with sql.transaction() as tx:
        await tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            (SECRET_KEY, secrets.token_hex(32)),
        )
        await tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            (CREATED_KEY, str(now_ms())),
        )
        value = await tx.scalar("SELECT value FROM meta WHERE key = ?", (SECRET_KEY,))
    return bytes.fromhex(str(value))


def hash_id(secret: bytes, platform: str, raw_id: str | int) -> str:
    """Hex HMAC-SHA256 of platform and id: stable per install, different across installs
    and across platforms (the same number on Telegram and Discord is two people)."""
    if not platform or "\x00" in platform:
        raise ValueError("platform must be a non-empty string without NUL")
    message = f"{platform}\x00{raw_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
