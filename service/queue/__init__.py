"""The job queue between front ends and workers on several machines, on Redis (arq).

Unset `ANIMEBOT_QUEUE` keeps today's in-process queue; a `redis://` URL puts every accepted job
on a shared arq queue that `animebot worker` processes on any machine pull from. See
docs/ARCHITECTURE.md, "Running on several machines".
"""

from service.queue.blobs import RedisBlobs
from service.queue.config import QueueConfig
from service.queue.delivery import DeliveryLedger
from service.queue.dispatcher import RedisDispatcher
from service.queue.results import WebResults
from service.queue.worker import QueueWorker

__all__ = [
    "DeliveryLedger",
    "QueueConfig",
    "QueueWorker",
    "RedisBlobs",
    "RedisDispatcher",
    "WebResults",
]
