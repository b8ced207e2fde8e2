"""A clip's reply crossing Redis (service/queue/wire.py): rebuilt whole on the front end, and
its JSON flat (the encoded clip's fields beside the reply's), as a worker of the previous
version writes and reads it. No Redis needed: the JSON is checked as it would be stored."""

from __future__ import annotations

import json

from core.video import EncodedClip
from service.clips import ClipReply
from service.queue.results import WebResult
from service.queue.wire import from_wire, reply_to_wire


def _reply() -> ClipReply:
    clip = EncodedClip(
        b"\x00\x00\x00\x18ftypmp42", "video/mp4", "mp4", 320, 240, 12, 24.0, 0.5, True
    )
    return ClipReply(
        clip=clip,
        style="hayao",
        notes=("cut", "downscaled"),
        cache_hit=False,
        result_key="k" * 64,
        cost=2,
        flicker=1.25,
        compute_ms=812.5,
        total_ms=900.0,
        request_id="r-1",
    )


def test_a_clip_reply_round_trips_through_json() -> None:
    reply = _reply()
    wired = reply_to_wire(reply)
    stored = WebResult(wired.data, json.loads(json.dumps(wired.meta)))
    assert from_wire(stored) == reply


def test_the_clip_json_is_flat_as_the_previous_version_wrote_it() -> None:
    wired = reply_to_wire(_reply())
    assert wired.data == b"\x00\x00\x00\x18ftypmp42"
    assert wired.meta == {
        "clip": {
            "mime": "video/mp4",
            "ext": "mp4",
            "width": 320,
            "height": 240,
            "frames": 12,
            "fps": 24.0,
            "seconds": 0.5,
            "has_audio": True,
            "style": "hayao",
            "notes": ["cut", "downscaled"],
            "cache_hit": False,
            "result_key": "k" * 64,
            "cost": 2,
            "flicker": 1.25,
            "compute_ms": 812.5,
            "total_ms": 900.0,
            "request_id": "r-1",
        }
    }
