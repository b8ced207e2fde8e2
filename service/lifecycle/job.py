"""A job: one person's request, self-contained, so any process holding it can finish it.

Who asked (platform, user, chat, language), where the photo comes from (`source`), the options,
and where the answer goes (`outlet`). Plain JSON (`to_dict`/`from_dict`), except an upload's
bytes (`upload`), which never travel in the JSON: a dispatcher that crosses processes moves
them into the shared input cache first (`JobRunner.stash_upload`).

Source kinds (`source["kind"]`): "upload" (bytes in `upload`), "cached" (`input_key`: a photo
in the input cache, e.g. a button's "another style"), "telegram_file" (`file_id`, `size`),
"discord_attachment" (`url`, `size`, `filename`). A source may carry `limit`: the largest file
the platform lets a bot fetch, checked before anything is downloaded.

A clip (a video, an animated GIF, a video note or sticker) is a job like a photo, with
`options["clip"] = True` (`is_clip`): the runner converts it through the clip service
(`ClipService`) and hands it to the outlet's `deliver_clip`. Clip options: `sticker` (a
Telegram video sticker: answered as one when this machine can encode VP9), `still_as_photo`
(a GIF that may turn out to be one picture: then converted as a photo), `gif` (a GIF back
when it fits, for Discord).

A durable row is a job (`job_from_pending`), so a process that did not accept it can run it.
A batch (`source["kind"] == BATCH`, Discord's Anime-fy) is split into its photos
(`batch_parts`), each a request of its own with its own usage row.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from storage import PendingJob
from storage.clock import now_ms

JSONDict = dict[str, Any]


def new_job_id() -> str:
    """A fresh request id (the reference people quote); bots use `JobRunner.job_key`."""
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class Job:
    platform: str  # "telegram", "discord", "web"
    user_id: str  # the platform's raw id: hashed before anything about it is stored
    lang: str
    source: JSONDict
    outlet: JSONDict  # {"kind": "telegram" | "discord" | "web", ...what that outlet needs}
    options: JSONDict = field(default_factory=dict)  # style, faces, side_by_side, fmt...
    chat_id: str | None = None
    request_id: str = field(default_factory=new_job_id)  # the idempotency key
    created_at: int = field(default_factory=now_ms)  # unix ms
    attempts: int = 0  # process starts that began working on it
    admin: bool = False  # decided by JobRunner.accept, never by a front end
    durable: bool = True  # kept in the jobs table until answered (web requests: no)
    upload: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def source_kind(self) -> str:
        return str(self.source.get("kind", "upload"))

    @property
    def outlet_kind(self) -> str:
        return str(self.outlet["kind"])

    def to_dict(self) -> JSONDict:
        data = asdict(self)
        del data["upload"]
        return data

    @classmethod
    def from_dict(cls, data: JSONDict) -> Job:
        known = {f.name for f in fields(cls)} - {"upload"}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a job is a JSON object")
        return cls.from_dict(data)

    def with_outlet(self, **changes: Any) -> Job:
        """More about where the answer goes (e.g. a status message sent meanwhile); a None
        value removes the key, as the durable row's merge does."""
        merged = {**self.outlet, **changes}
        return replace(self, outlet={k: v for k, v in merged.items() if v is not None})

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    @property
    def is_clip(self) -> bool:
        """Every frame converted (a video or an animation), not a photo."""
        return bool(self.options.get(CLIP))


CLIP = "clip"  # the option that makes a job a clip's

BATCH = "batch"  # a job's source kind: `items`, several sources answered together


def batch_parts(job: Job) -> list[Job]:
    """The photos of a batch job, each a request of its own (`<request id>-<n>`)."""
    return [
        replace(
            job,
            request_id=f"{job.request_id[:16]}-{n}",
            source=dict(item),
            durable=False,
            upload=None,
        )
        for n, item in enumerate(job.source.get("items", ()), 1)
    ]


def job_from_pending(pending: PendingJob) -> Job:
    """The durable row carries the job: its id is the request id."""
    return Job(
        platform=pending.platform,
        user_id=pending.user_id,
        lang=pending.lang,
        source=dict(pending.source),
        outlet={"kind": pending.platform, **pending.reply},
        options=dict(pending.options),
        chat_id=pending.chat_id,
        request_id=pending.id,
        created_at=pending.created_at,
        attempts=pending.attempts,
        durable=True,
    )
