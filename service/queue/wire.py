"""Replies and refusals as they cross Redis between a worker and a web front end.

A `ConversionReply` (or a clip's `ClipReply`) goes as its bytes plus its other fields as JSON
(under "reply" or "clip"); a refusal as its
code and attributes, rebuilt on the other side as the same `AnimeBotError` subclass (found by
its `code`), so the front end answers exactly as if the job had run in its own process.
"""

from __future__ import annotations

import dataclasses

from core.errors import AnimeBotError
from service.clips import ClipReply
from service.convert import ConversionReply
from service.errors import InternalError
from service.queue.results import WebResult

_SCALARS = (str, int, float, bool, type(None))


def reply_to_wire(reply: ConversionReply | ClipReply) -> WebResult:
    meta = {f.name: getattr(reply, f.name) for f in dataclasses.fields(reply) if f.name != "data"}
    meta["notes"] = list(reply.notes)
    return WebResult(reply.data, {"clip" if isinstance(reply, ClipReply) else "reply": meta})


def error_to_wire(error: AnimeBotError) -> WebResult:
    attrs = {k: v for k, v in vars(error).items() if isinstance(v, _SCALARS | list)}
    return WebResult(b"", {"error": {"code": error.code, "message": str(error), "attrs": attrs}})


def from_wire(result: WebResult) -> ConversionReply | ClipReply | AnimeBotError:
    for kind, reply_type in (("reply", ConversionReply), ("clip", ClipReply)):
        if kind in result.meta:
            meta = dict(result.meta[kind])
            meta["notes"] = tuple(meta.get("notes", ()))
            reply: ConversionReply | ClipReply = reply_type(data=result.data, **meta)
            return reply
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
