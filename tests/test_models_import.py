"""`animebot models add|pull|remove`: verification before trust, resumable verified downloads,
and nothing half-written. Downloads come from a local server on 127.0.0.1, never the internet;
checkpoints are random-weight AnimeGANv2 generators made here."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import core.registry
import models
import models.published as pub
from cli.download import download, mirror_url
from cli.errors import ChecksumMismatch
from cli.main import main
from cli.model_import import kind_for, licence_for
from core.registry import Registry, load_spec
from core.session import StyleSession
from models.pairs import shared_dir
from tests.fixtures_models import synthetic_photos

torch = pytest.importorskip("torch", reason="models add needs torch (train extras)")

REFERENCE = shared_dir() / "reference" / "animeganv2_state_dict.json"
# Python exception class names, which no message for people should show.
PYTHON_NAMES = re.compile(r"\b[A-Z]\w*(Error|Exception|Exit)\b|\b(BadZipFile|gaierror)\b")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random-weight generators saved the ways people save them."""
    from models.animeganv2 import Generator

    torch.manual_seed(0)
    state = Generator().state_dict()
    root = tmp_path_factory.mktemp("checkpoints")
    paths = {
        "plain": root / "plain.pt",
        "wrapped": root / "wrapped.pt",
        "bad_shape": root / "bad_shape.pt",
        "missing": root / "missing.pt",
    }
    torch.save(state, paths["plain"])
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, paths["wrapped"])
    torch.save({**state, "block_a.0.1.weight": torch.zeros(16, 3, 7, 7)}, paths["bad_shape"])
    torch.save({k: v for k, v in state.items() if not k.startswith("out_layer")}, paths["missing"])
    return paths


@pytest.fixture
def models_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user models dir, and a built-in dir holding only a (file-less) 'hayao' folder,
    so results do not depend on the trained weights installed in models/weights."""
    root = tmp_path / "user-models"
    monkeypatch.setenv("ANIMEBOT_MODELS_DIR", str(root))
    monkeypatch.setenv("ANIMEBOT_DATA", str(tmp_path / "data"))
    builtin = tmp_path / "builtin"
    (builtin / "hayao").mkdir(parents=True)
    monkeypatch.setattr(models, "WEIGHTS_DIR", builtin)
    monkeypatch.setattr(core.registry, "WEIGHTS_DIR", builtin)
    return root


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "calibration"
    folder.mkdir()
    for i, rgb in enumerate(synthetic_photos(3, (96, 128))):
        Image.fromarray(rgb).save(folder / f"{i}.png")
    (folder / "readme.txt").write_text("not a photo")
    return folder


@pytest.fixture
def no_photos(tmp_path: Path) -> Path:
    folder = tmp_path / "no-photos"
    folder.mkdir()
    return folder


@dataclass(frozen=True)
class Run:
    rc: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Run:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Run(rc, captured.out, captured.err)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# --------------------------------------------------------------------------- published layout


def test_published_layout_equals_the_shared_reference() -> None:
    if not REFERENCE.is_file():
        pytest.skip(f"shared reference not found at {REFERENCE}")
    ref = json.loads(REFERENCE.read_text())
    assert [(t["key"], tuple(t["shape"])) for t in ref["tensors"]] == list(pub.TENSORS)
    assert ref["total_parameters"] == pub.TOTAL_PARAMETERS
    ours = [
        {
            "name": w.name,
            "url": w.url,
            "git_blob_sha1": w.git_blob_sha1,
            "trained_on": w.trained_on,
            "license_note": w.license_note,
        }
        for w in pub.PUBLISHED
    ]
    assert ours == ref["published_weights"]


def test_published_layout_is_our_generator() -> None:
    from models.animeganv2 import Generator

    state = Generator().state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == list(pub.TENSORS)
    assert sum(int(np.prod(s)) for _, s in pub.TENSORS) == pub.TOTAL_PARAMETERS


def test_git_blob_sha1_is_what_git_prints(tmp_path: Path) -> None:
    # `printf 'hello\n' | git hash-object --stdin` and the empty blob, well-known values
    assert pub.git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert pub.git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    data = np.random.default_rng(1).bytes(3 << 20)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    digests = pub.file_digests(path, chunk=1 << 16)
    assert digests.git_blob_sha1 == pub.git_blob_sha1(data)
    assert digests.sha1 == hashlib.sha1(data).hexdigest()
    assert digests.sha256 == hashlib.sha256(data).hexdigest() and digests.size == len(data)


def test_kind_and_licence() -> None:
    assert kind_for("face_paint_512_v2", face=False) == "face"
    assert kind_for("celeba_distill", face=False) == "face"
    assert kind_for("paprika", face=False) == "scene"
    assert kind_for("mine", face=True) == "face"
    paprika = pub.published("paprika")
    assert "non-commercial" in licence_for(paprika) and "MIT" in licence_for(paprika)
    assert "unknown origin" in licence_for(None)


# --------------------------------------------------------------------------- add: refusals


@pytest.mark.parametrize(
    ("which", "needle"),
    [
        ("bad_shape", "block_a.0.1.weight (16, 3, 7, 7) != (32, 3, 7, 7)"),
        ("missing", "1 missing (out_layer.0.weight)"),
    ],
)
def test_add_refuses_a_different_layout(
    which: str,
    needle: str,
    checkpoints: dict[str, Path],
    models_root: Path,
    no_photos: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = run(
        capsys, "models", "add", checkpoints[which], "--name", "mine", "--calibration", no_photos
    )
    assert r.rc == 2
    assert "is not a published AnimeGANv2 generator checkpoint" in r.err and needle in r.err
    assert r.err.count("animebot:") == 1 and "Traceback" not in r.err
    assert "provenance" not in r.err  # nothing said "verified" about a file that failed
    assert leftovers(models_root) == []


class Smuggled:
    """Stands for arbitrary pickled objects: weights_only must refuse to build it."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (print, ("pwned",))


def test_add_never_unpickles_objects(
    tmp_path: Path, models_root: Path, no_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": Smuggled()}, evil)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    for path in (evil, junk):
        r = run(capsys, "models", "add", path, "--name", "mine", "--calibration", no_photos)
        assert r.rc == 2 and "not a PyTorch checkpoint of plain tensors" in r.err
        assert "pwned" not in r.out
        assert "provenance" not in r.err and "verified" not in r.err  # it never was
        assert not PYTHON_NAMES.search(r.err), r.err  # a sentence, not UnpicklingError
    assert leftovers(models_root) == []


def test_add_refuses_a_published_name_with_other_bytes(
    checkpoints: dict[str, Path], models_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "models", "add", checkpoints["plain"], "--name", "paprika")
    assert r.rc == 2
    assert "is not the published paprika checkpoint" in r.err
    assert pub.published("paprika").git_blob_sha1 in r.err  # type: ignore[union-attr]
    assert leftovers(models_root) == []


@pytest.mark.parametrize(
    ("name", "needle"),
    [("hayao", "a built-in style is called 'hayao'"), ("../up", "must be lower-case")],
)
def test_add_refuses_bad_names(
    name: str,
    needle: str,
    checkpoints: dict[str, Path],
    models_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = run(capsys, "models", "add", checkpoints["plain"], "--name", name)
    assert r.rc == 2 and needle in r.err
    assert leftovers(models_root) == []


def test_add_without_torch_says_how_to_install_it(
    checkpoints: dict[str, Path],
    models_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    r = run(capsys, "models", "add", checkpoints["plain"], "--name", "mine")
    assert r.rc == 2
    assert "install the training extras: pip install -e '.[train]'" in r.err


# --------------------------------------------------------------------------- add: success


def test_add_verified_published_checkpoint_end_to_end(
    checkpoints: dict[str, Path],
    models_root: Path,
    photos: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the published table pointing at our file, the name counts as published: SHA-1
    verified, face kind, INT8 exported and gated, installed atomically, served, removable."""
    digest = pub.file_digests(checkpoints["plain"]).git_blob_sha1
    fake = pub.PublishedWeights(
        "face_paint_512_v2", "http://127.0.0.1/x.pt", digest, "test", "code MIT; test weights"
    )
    monkeypatch.setattr(pub, "PUBLISHED", (fake,))
    argv = ["models", "add", checkpoints["plain"], "--name", "face_paint_512_v2"]
    r = run(capsys, *argv, "--calibration", photos, "--title", "Face Paint")
    assert r.rc == 0, r.err
    assert "verified: git blob SHA-1 matches the published face_paint_512_v2" in r.out
    assert "installed face style 'face_paint_512_v2' (Face Paint)" in r.out
    assert "warning" not in r.err
    assert leftovers(models_root) == ["face_paint_512_v2"]  # no staging folder left behind

    folder = models_root / "face_paint_512_v2"
    meta = json.loads((folder / "model.json").read_text())
    assert meta["kind"] == "face" and meta["architecture"] == "animeganv2"
    assert meta["parameters"] == pub.TOTAL_PARAMETERS and meta["multiple"] == 4
    assert meta["source"]["git_blob_sha1"] == digest and meta["source"]["file"] == "plain.pt"
    assert meta["source"]["published_as"] == "face_paint_512_v2"
    assert "MIT" in meta["licence"]
    assert meta["calibration_photos"]["count"] == 3
    assert "same 3 calibration photos" in meta["validation_photos"]
    assert meta["gate"]["threshold_db"] == 35.0
    assert meta["serve"] == ("int8" if meta["gate"]["passed"] else "fp32")
    assert set(meta["files"]) == ({"fp32", "int8"} if meta["gate"]["passed"] else {"fp32"})
    assert (folder / "CARD.md").read_text().startswith("# Face Paint (face_paint_512_v2)")

    spec = Registry([models_root]).get("face_paint_512_v2")  # verifies the file hash too
    out = StyleSession(spec).run(synthetic_photos(1, (70, 90))[0])
    assert out.shape == (70, 90, 3) and out.dtype == np.uint8
    rows = json.loads(run(capsys, "models", "list", "--json").out)
    assert {r["name"]: r["source"] for r in rows}["face_paint_512_v2"] == "user"

    again = run(capsys, *argv, "--calibration", photos)
    assert again.rc == 2 and "already installed" in again.err

    assert run(capsys, "models", "remove", "face_paint_512_v2").rc == 0
    assert leftovers(models_root) == []
    gone = run(capsys, "models", "remove", "face_paint_512_v2")
    assert gone.rc == 2 and "no style called 'face_paint_512_v2'" in gone.err
    assert "no imported styles are installed" in gone.err and "available:" not in gone.err


def test_remove_refuses_built_in_styles(
    models_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "models", "remove", "hayao")
    assert r.rc == 2 and "'hayao' is a built-in style" in r.err
    assert (models.WEIGHTS_DIR / "hayao").is_dir()


# --------------------------------------------------------------------------- pull


@dataclass
class Served:
    """A file server on 127.0.0.1 that honours Range and can drop a connection mid-file."""

    files: dict[str, bytes]
    drop_first_after: int | None = None  # bytes sent before the first response is cut
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def server() -> Iterator[Served]:
    served = Served({})

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append((self.path, self.headers.get("Range")))
            data = served.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if match and not served.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if served.drop_first_after is not None:
                cut, served.drop_first_after = served.drop_first_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-file
                return
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_pull_resumes_after_a_dropped_connection_and_imports(
    server: Served,
    checkpoints: dict[str, Path],
    models_root: Path,
    no_photos: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = checkpoints["wrapped"].read_bytes()  # {"state_dict": {"module.…": …}} on the wire
    server.files["/w/gen.pt"] = data
    server.drop_first_after = len(data) // 3
    sha1 = pub.git_blob_sha1(data)
    dest = tmp_path / "downloads"
    argv = ["models", "pull", "--url", server.url("/w/gen.pt"), "--sha1", sha1]
    argv += ["--name", "gen", "--dest", str(dest), "--calibration", str(no_photos)]

    first = run(capsys, *argv, "--retries", "0")
    assert first.rc == 1
    assert "run the same command again to resume" in first.err and "Traceback" not in first.err
    part = dest / "gen.pt.part"
    assert part.stat().st_size == len(data) // 3
    assert leftovers(models_root) == []

    second = run(capsys, *argv)
    assert second.rc == 0, second.err
    assert server.requests[-1] == ("/w/gen.pt", f"bytes={len(data) // 3}-")
    assert f"resumed at {len(data) // 3:,} bytes" in second.out
    assert (dest / "gen.pt").read_bytes() == data and not part.exists()
    assert "warning: provenance unchecked" in second.err
    meta = json.loads((models_root / "gen" / "model.json").read_text())
    assert meta["source"]["url"] == server.url("/w/gen.pt")
    assert meta["source"]["git_blob_sha1"] == sha1 and meta["serve"] == "fp32"
    assert meta["int8_skipped"] == f"no usable photos in {no_photos}"
    assert load_spec(models_root / "gen").precision == "fp32"
    styles = json.loads(run(capsys, "models", "list", "--json").out)
    assert {r["name"]: r["gate_note"] for r in styles}["gen"].startswith("INT8 skipped")

    third = run(capsys, *argv, "--force")  # already there: no second download
    assert third.rc == 0 and "already downloaded" in third.out
    assert len(server.requests) == 2


def test_pull_refuses_a_checksum_mismatch(
    server: Served, models_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.files["/gen.pt"] = b"x" * 100_000
    dest = tmp_path / "downloads"
    wrong = "0" * 40
    argv = ["models", "pull", "--url", server.url("/gen.pt"), "--sha1", wrong, "--name", "gen"]
    r = run(capsys, *argv, "--dest", dest)
    assert r.rc == 2
    assert "does not match its SHA-1" in r.err and "deleted" in r.err
    assert leftovers(dest) == [] and leftovers(models_root) == []


def test_pull_published_name_from_a_mirror_is_checked_against_the_published_sha1(
    server: Served, models_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = "/mirror/bryandlee/animegan2-pytorch/raw/main/weights/paprika.pt"
    server.files[path] = b"not the real paprika" * 1000
    argv = ["models", "pull", "paprika", "--mirror", server.url("/mirror/"), "--dest", tmp_path]
    r = run(capsys, *argv)
    assert r.rc == 2 and "does not match its SHA-1" in r.err
    assert pub.published("paprika").git_blob_sha1 in r.err  # type: ignore[union-attr]
    assert server.requests == [(path, None)]
    assert leftovers(models_root) == [] and not (tmp_path / "paprika.pt").exists()


def test_pull_usage_errors_and_404(
    server: Served, models_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = run(capsys, "models", "pull", "hayao_v9")
    assert unknown.rc == 2 and "not a published model" in unknown.err
    no_sha = run(capsys, "models", "pull", "--url", server.url("/x.pt"), "--name", "x")
    assert no_sha.rc == 2 and "--url needs --sha1 and --name" in no_sha.err
    argv = ["models", "pull", "--url", server.url("/x.pt"), "--sha1", "a" * 40, "--name", "x"]
    missing = run(capsys, *argv, "--dest", tmp_path)
    assert missing.rc == 1 and "the server answered 404" in missing.err
    ftp = run(capsys, "models", "pull", "--url", "ftp://x/y.pt", "--sha1", "a" * 40, "--name", "x")
    assert ftp.rc == 2 and "not an http(s) URL" in ftp.err


def test_pull_offline_says_which_host_cannot_be_reached(
    models_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_dns(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    refused = run(
        capsys,
        *("models", "pull", "--url", f"http://127.0.0.1:{closed}/x.pt", "--sha1", "a" * 40),
        *("--name", "x", "--dest", tmp_path, "--retries", "0"),
    )
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # offline: no name resolves
    offline = run(capsys, "models", "pull", "paprika", "--dest", tmp_path, "--retries", "1")
    assert refused.rc == 1 and offline.rc == 1
    assert "animebot: cannot reach 127.0.0.1 (connection refused)" in refused.err
    assert "animebot: cannot reach github.com (the host name could not be resolved)" in offline.err
    for r in (refused, offline):
        assert "input/output error" not in r.err and "resume" not in r.err
        assert r.err.count("animebot:") == 1 and not PYTHON_NAMES.search(r.err)
    assert leftovers(models_root) == []


def test_download_retries_within_one_run(server: Served, tmp_path: Path) -> None:
    data = np.random.default_rng(2).bytes(700_000)
    server.files["/f.pt"] = data
    server.drop_first_after = 250_000
    got = download(
        server.url("/f.pt"), tmp_path / "f.pt", sha1=pub.git_blob_sha1(data), backoff_s=0
    )
    assert got.path.read_bytes() == data and got.fetched == len(data)
    assert [r for _, r in server.requests] == [None, "bytes=250000-"]


def test_download_restarts_when_the_server_ignores_range(server: Served, tmp_path: Path) -> None:
    data = np.random.default_rng(3).bytes(300_000)
    server.files["/f.pt"] = data
    server.ignore_range = True
    (tmp_path / "f.pt.part").write_bytes(b"stale bytes from another file")
    plain_sha1 = hashlib.sha1(data).hexdigest()  # `sha1sum` output is accepted too
    got = download(server.url("/f.pt"), tmp_path / "f.pt", sha1=plain_sha1, progress=False)
    assert got.path.read_bytes() == data
    assert server.requests[0][1] == "bytes=29-"


def test_download_with_a_complete_part_and_bad_bytes_deletes_it(
    server: Served, tmp_path: Path
) -> None:
    data = b"abc" * 1000
    server.files["/f.pt"] = data
    (tmp_path / "f.pt.part").write_bytes(b"z" * len(data))  # whole length, wrong content: 416
    with pytest.raises(ChecksumMismatch):
        download(server.url("/f.pt"), tmp_path / "f.pt", sha1=pub.git_blob_sha1(data))
    assert leftovers(tmp_path) == []
    assert download(server.url("/f.pt"), tmp_path / "f.pt", sha1=pub.git_blob_sha1(data)).fetched


def test_mirror_url_keeps_the_path() -> None:
    url = "https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/paprika.pt"
    assert mirror_url("http://m.local/base/", url) == (
        "http://m.local/base/bryandlee/animegan2-pytorch/raw/main/weights/paprika.pt"
    )
    assert mirror_url("http://m.local", url).startswith("http://m.local/bryandlee/")
