"""Replies and refusals as they cross Redis between a worker and a web front end.

A `ConversionReply` (or a clip's `ClipReply`) goes as its bytes plus its other fields as JSON
(under "reply" or "clip"; a clip's `EncodedClip` fields flat beside the reply's, so the JSON is
the same whichever side is newer); a refusal as its code and attributes, rebuilt on the other
side as the same `AnimeBotError` subclass (found by its `code`), so the front end answers
exactly as if the job had run in its own process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.errors import AnimeBotError
from core.video import EncodedClip
from service.clips import ClipReply
from service.convert import ConversionReply
from service.errors import InternalError
from service.queue.results import WebResult

_SCALARS = (str, int, float, bool, type(None))
_NESTED = ("data", "clip")  # the bytes travel beside the JSON; an EncodedClip goes flat
_ENCODED = tuple(f.name for f in dataclasses.fields(EncodedClip) if f.name != "data")


def reply_to_wire(reply: ConversionReply | ClipReply) -> WebResult:
    if isinstance(reply, ClipReply):  # the encoded clip's fields flat beside the reply's
        meta = {**_fields(reply.clip), **_fields(reply)}
        data = reply.clip.data
    else:
        meta, data = _fields(reply), reply.data
    meta["notes"] = list(reply.notes)
    return WebResult(data, {"clip" if isinstance(reply, ClipReply) else "reply": meta})


def _fields(obj: ConversionReply | ClipReply | EncodedClip) -> dict[str, Any]:
    """A reply's fields for the JSON: all but the bytes (and a clip's `EncodedClip`, sent
    flat, as its own fields)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in _NESTED}


def error_to_wire(error: AnimeBotError) -> WebResult:
    attrs = {k: v for k, v in vars(error).items() if isinstance(v, _SCALARS | list)}
    return WebResult(b"", {"error": {"code": error.code, "message": str(error), "attrs": attrs}})


def from_wire(result: WebResult) -> ConversionReply | ClipReply | AnimeBotError:
    if "reply" in result.meta:
        meta = dict(result.meta["reply"])
        meta["notes"] = tuple(meta.get("notes", ()))
        return ConversionReply(data=result.data, **meta)
    if "clip" in result.meta:
        meta = dict(result.meta["clip"])
        meta["notes"] = tuple(meta.get("notes", ()))
        encoded = {name: meta.pop(name) for name in _ENCODED if name in meta}
        return ClipReply(clip=EncodedClip(data=result.data, **encoded), **meta)
    error = result.meta.get("error", {})
    cls = _error_class(str(error.get("code", "")))
    if cls is None:
        return InternalError(str(error.get("attrs", {}).get("request_id", "")))
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(error.get("message", "")))
    for key, value in dict(error.get("attrs", {})).items():
        setattr(exc, key, value)
    return exc


def _error_class(code: str) -> type[AnimeBotError] | None:
    todo: list[type[AnimeBotError]] = [AnimeBotError]
    while todo:
        cls = todo.pop()
        if getattr(cls, "code", None) == code and cls is not AnimeBotError:
            return cls
        todo.extend(cls.__subclasses__())
    return None
