"""Reading the web forms (the photo upload, the admin sign-in) within hard limits.

aiohttp's `request.post()` lets its parser's exceptions out for a malformed body (`--x\\r\\n
garbage`), a part header longer than 8 KB (a 9000-character file name) or a 1 MB one, and
answers 10,000 fields with a 413 that reads like a size problem. `read_form` reads multipart and
urlencoded bodies itself and turns every problem into a typed error with a stable code, which
the routes answer as 400 with a translated message:

- `FormError` (`bad_form`): not a well-formed form (framing, part headers, encodings, text
  that is not UTF-8, a text field over `MAX_TEXT_BYTES`, nested multipart, a file where none
  is expected);
- `TooManyFields` (`too_many_fields`): more than `MAX_FIELDS` fields;
- `ImageTooLarge` (`too_large`, 413): a file over `max_file_bytes`, or a body over the limit.

Files (parts with a file name, or with a non-text Content-Type) come back as `bytes`, text
fields as `str` (UTF-8), in one MultiDict, in the order sent.
"""

from __future__ import annotations

import urllib.parse
import warnings
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BadContentDispositionHeader, parse_content_disposition
from multidict import MultiDict, MultiDictProxy

from core.errors import ImageTooLarge, InputError

# The page sends 7 (image, style, faces twice, side by side twice, format, lang); sign-in 4.
MAX_FIELDS = 32
# A style name, a flag, a language, the admin token: nothing longer is a legitimate value.
MAX_TEXT_BYTES = 4096
# Framing and the small fields around a file (boundaries, part headers, options).
FORM_OVERHEAD_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
_IDENTITY_TRANSFER = {"", "binary", "8bit", "7bit"}
_IDENTITY_ENCODING = {"", "identity"}

Form = MultiDictProxy[str | bytes]


class FormError(InputError):
    """The request body is not a form we can read."""

    code = "bad_form"


class TooManyFields(FormError):
    code = "too_many_fields"

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} form fields")
        self.message_params = {"max": limit}


async def read_form(request: web.Request, *, max_file_bytes: int = 0) -> Form:
    """The form of a POST: multipart/form-data or application/x-www-form-urlencoded; any
    other body type is an empty form. `max_file_bytes=0`: files are refused (`bad_form`)."""
    max_body = max_file_bytes + FORM_OVERHEAD_BYTES
    declared = request.content_length
    if max_file_bytes and declared is not None and declared > max_body:
        raise _too_large(max_file_bytes)  # an upload: refused before reading a byte
    # A form without files is read up to max_body: its fields are counted on the way, so a
    # body of 10,000 fields is refused for what it is.
    content_type = request.content_type
    try:
        if content_type == "multipart/form-data":
            return await _multipart(request, max_file_bytes, max_body)
        if content_type in ("", "application/x-www-form-urlencoded"):
            return await _urlencoded(request, max_file_bytes, max_body)
    except (web.HTTPRequestEntityTooLarge, ImageTooLarge):
        raise _too_large(max_file_bytes) from None
    except FormError:
        raise
    except (HttpProcessingError, ValueError, LookupError, AssertionError) as exc:
        # aiohttp's multipart parser: bad framing, header lines over its limit, bad charsets.
        raise FormError(f"malformed form: {type(exc).__name__}") from None
    except RuntimeError as exc:  # aiohttp: "Invalid default charset" in a _charset_ field
        raise FormError(f"malformed form: {exc}") from None
    return MultiDictProxy(MultiDict())


def _too_large(max_file_bytes: int) -> InputError:
    if max_file_bytes:
        return ImageTooLarge("upload too large", limit=max_file_bytes)
    return FormError("form body too large")


async def _multipart(request: web.Request, max_file_bytes: int, max_body: int) -> Form:
    out: MultiDict[str | bytes] = MultiDict()
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if len(out) >= MAX_FIELDS:
            raise TooManyFields(MAX_FIELDS)
        if not isinstance(part, BodyPartReader):
            raise FormError("nested multipart")
        name, filename = _disposition(part)
        transfer = part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING, "").strip().lower()
        encoding = part.headers.get(hdrs.CONTENT_ENCODING, "").strip().lower()
        if transfer not in _IDENTITY_TRANSFER or encoding not in _IDENTITY_ENCODING:
            raise FormError("encoded form part")  # browsers never send these
        content_type = part.headers.get(hdrs.CONTENT_TYPE, "text/plain").strip().lower()
        if filename is not None or not content_type.startswith("text/"):  # a file, or bytes
            if not max_file_bytes:
                raise FormError("a file where none is expected")
            out.add(name, await _read_part(request, part, max_file_bytes, max_body, file=True))
        else:
            raw = await _read_part(request, part, MAX_TEXT_BYTES, max_body, file=False)
            out.add(name, _text(raw))
    return MultiDictProxy(out)


def _disposition(part: BodyPartReader) -> tuple[str, str | None]:
    header = part.headers.get(hdrs.CONTENT_DISPOSITION)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadContentDispositionHeader)
        try:
            kind, params = parse_content_disposition(header)
        except BadContentDispositionHeader:
            raise FormError("bad Content-Disposition") from None
    name = params.get("name")
    if kind != "form-data" or not name:
        raise FormError("a form part without a name")
    return name, params.get("filename")


async def _read_part(
    request: web.Request, part: BodyPartReader, limit: int, max_body: int, *, file: bool
) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            if file:
                raise ImageTooLarge("upload too large", limit=limit)
            raise FormError("form field too long")
        if request.content.total_bytes > max_body:
            raise ImageTooLarge("form body too large", limit=max_body)  # -> _too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FormError("form field is not UTF-8") from None


async def _urlencoded(request: web.Request, max_file_bytes: int, max_body: int) -> Form:
    limit = min(max_body, MAX_FIELDS * (MAX_TEXT_BYTES + 64))
    chunks: list[bytes] = []
    size = 0
    fields = 1
    while chunk := await request.content.read(CHUNK_BYTES):
        size += len(chunk)
        fields += chunk.count(b"&")
        if fields > MAX_FIELDS:  # the real reason, even when the body is long too
            raise TooManyFields(MAX_FIELDS)
        if size > limit:
            raise _too_large(max_file_bytes) if size > max_body else FormError("form too long")
        chunks.append(chunk)
    text = _text(b"".join(chunks)).rstrip()
    try:
        pairs: list[tuple[str, Any]] = urllib.parse.parse_qsl(
            text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict"
        )
    except UnicodeDecodeError:  # a ValueError too: first
        raise FormError("form field is not UTF-8") from None
    except ValueError:  # otherwise parse_qsl raises only for max_num_fields
        raise TooManyFields(MAX_FIELDS) from None
    if any(len(value.encode()) > MAX_TEXT_BYTES for _, value in pairs):
        raise FormError("form field too long")
    return MultiDictProxy(MultiDict(pairs))


class UnknownFormat(InputError):
    """An output format the page does not offer (jpeg, png, webp)."""

    code = "unknown_format"

    def __init__(self, given: str, available: tuple[str, ...]) -> None:
        super().__init__(f"unknown output format {given!r}")
        self.message_params = {"format": given[:40], "formats": ", ".join(available)}
