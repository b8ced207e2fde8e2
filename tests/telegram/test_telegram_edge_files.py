"""Every hard input in shared/data/photos/edge, sent as a file: each is answered with a picture
or with its specific translated error, nothing crashes, and each leaves one usage row."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from core.errors import AnimeBotError
from core.imageio import decode
from i18n import error_message, note_message, t
from tests.standins.telegram_api import Call, make_user
from tests.telegram.helpers import Harness, matches


def expected_outcome(data: bytes, harness: Harness) -> tuple[str, str | tuple[str, ...]]:
    """("error", translated text) or ("image", translated notes), decided by decoding the
    file directly with the limits the running service uses."""
    settings = harness.runtime.settings
    try:
        decoded = decode(data, max_pixels=settings.max_pixels, max_bytes=settings.max_upload_bytes)
    except AnimeBotError as exc:
        return "error", error_message(exc, "en")
    notes = list(decoded.notes)
    if max(decoded.width, decoded.height) > settings.max_side:
        notes.append("downscaled")  # the engine scales it to max_side first
    return "image", tuple(n for note in notes if (n := note_message(note, "en")))


def edge_files(edge_dir: Path) -> list[Path]:
    return sorted(p for p in edge_dir.iterdir() if p.is_file())


async def test_every_edge_file_is_answered(bot: Harness, edge_dir: Path) -> None:
    api = bot.api
    files = edge_files(edge_dir)
    assert len(files) >= 10
    user = make_user(3001, language_code="en", first_name="Edge")
    since = api.mark()
    sent = {}
    for path in files:
        data = path.read_bytes()
        mime = mimetypes.guess_type(path.name)[0]
        message = await api.send_document(user, None, data, path.name, mime)
        sent[path.name] = (message, expected_outcome(data, bot))

    def answered(call: Call) -> bool:  # a result or an error; not a queue status message
        if call.chat_id != user["id"]:
            return False
        if call.method == "sendMessage":
            text = call.params.get("text")
            return not matches("tg.status.queued", "en", text) and text != t("tg.status.working")
        return call.method in ("sendPhoto", "sendDocument")

    answers = await api.wait_for(None, answered, count=len(files), timeout=60, since=since)
    by_message = {c.reply_to_message_id: c for c in answers}
    for name, (message, (kind, detail)) in sent.items():
        call = by_message[message["message_id"]]
        assert call.ok, (name, call.description)
        if kind == "error":
            assert call.method == "sendMessage", name
            assert call.params["text"] == detail, name
        else:
            assert call.method in ("sendPhoto", "sendDocument"), (name, call.params.get("text"))
            caption_lines = call.params["caption"].split("\n")[1:]
            assert tuple(caption_lines) == detail, name
    await bot.settled()
    rows = await bot.rows_of(user)
    assert len(rows) == len(files)  # one usage row per file, whatever happened
    outcomes = {kind for _, (kind, _) in sent.values()}
    assert outcomes == {"error", "image"}
    errors = sorted(r["error_kind"] for r in rows if r["status"] == "error")
    assert len(errors) == sum(1 for _, (kind, _) in sent.values() if kind == "error")
    assert "internal" not in errors
    assert not api.internal_errors
