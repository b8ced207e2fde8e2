"""Storage on SQLite (aiosqlite) or PostgreSQL (asyncpg): usage log, content cache,
preferences, quotas, rate limits, pending jobs, statistics.

Knows nothing of images, models, bots or the engine: it stores rows and opaque bytes.
"""

from storage.cache import CacheEntry, CacheRepo
from storage.db import Database
from storage.errors import DatabaseUnavailable, IdKeyError, SchemaTooNewError, StorageError
from storage.jobs import PendingJob
from storage.migrations import LATEST_VERSION
from storage.prefs import UserPrefs
from storage.stats import DayCount, Failure, StatsSummary, percentile
from storage.usage import UsageRecord

__all__ = [
    "LATEST_VERSION",
    "CacheEntry",
    "CacheRepo",
    "Database",
    "DatabaseUnavailable",
    "DayCount",
    "Failure",
    "IdKeyError",
    "PendingJob",
    "SchemaTooNewError",
    "StatsSummary",
    "StorageError",
    "UsageRecord",
    "UserPrefs",
    "percentile",
]
