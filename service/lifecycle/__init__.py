"""One job lifecycle for every front end: `Job` (what was asked, self-contained), `Outlet`
(where the answer goes), `Dispatcher` (how a job reaches a worker) and `JobRunner` (accept in
the front end, execute in a worker). See docs/ARCHITECTURE.md, "One job lifecycle"."""

from service.lifecycle.dispatch import Dispatcher, LocalDispatcher
from service.lifecycle.job import Job, new_job_id
from service.lifecycle.outlet import (
    DeliveryFailed,
    Fetchers,
    FetchFailed,
    Outlet,
    OutletLimits,
    Outlets,
)
from service.lifecycle.runner import (
    AlreadyAccepted,
    DeliveryError,
    DownloadFailed,
    Expired,
    GaveUp,
    JobRunner,
    job_from_pending,
)
from service.lifecycle.waiting import Waiting

__all__ = [
    "AlreadyAccepted",
    "DeliveryError",
    "DeliveryFailed",
    "Dispatcher",
    "DownloadFailed",
    "Expired",
    "FetchFailed",
    "Fetchers",
    "GaveUp",
    "Job",
    "JobRunner",
    "LocalDispatcher",
    "Outlet",
    "OutletLimits",
    "Outlets",
    "Waiting",
    "job_from_pending",
    "new_job_id",
]
