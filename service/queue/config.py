"""What the queue needs to know, in one frozen value built from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import RedisSettings

QUEUE_FUNCTION = "animebot_job"
CLIP_FUNCTION = "animebot_clip"  # a clip's job: the same executor, a longer time limit


@dataclass(frozen=True)
class QueueConfig:
    url: str
    # Every key this installation writes starts with it: two bots can share one Redis.
    prefix: str = "animebot"
    # A job running longer is cancelled and retried; a killed worker's job is taken over
    # job_timeout_s + 10 s after it started (arq's in-progress key expires then).
    job_timeout_s: float = 60.0
    # A clip's job (every frame of a video) may run this long. A worker refreshes the marks of
    # the jobs it runs, so a killed worker's clip is taken over as soon as a photo's.
    clip_timeout_s: float = 900.0
    # Runs of one job (a killed worker's run counts); after the last, the person is told.
    max_runs: int = 3
    heartbeat_s: float = 2.0  # how often a worker says it is alive
    # How often an idle worker looks at the queue when nothing woke it: a queued job wakes every
    # idle worker at once (the wake channel), so this only bounds the wait for a missed wake-up.
    poll_s: float = 1.0
    result_ttl_s: float = 300.0  # a web result waits this long for its HTTP request
    blob_ttl_s: float = 24 * 3600.0  # uploads and results shared between machines
    blob_budget_bytes: int = 256 * 1024 * 1024

    @property
    def queue_name(self) -> str:
        return f"{self.prefix}:queue"

    @property
    def wake_channel(self) -> str:
        """Pub/sub channel: a message says a job was queued (service.queue.puller)."""
        return f"{self.prefix}:queue:wake"

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def redis_settings(self) -> RedisSettings:
        settings = RedisSettings.from_dsn(self.url)
        settings.conn_timeout = 2
        settings.conn_retries = 2
        settings.conn_retry_delay = 1
        return settings
