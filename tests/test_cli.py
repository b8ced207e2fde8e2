"""`animebot` CLI: convert, styles and the error paths, run in-process on the fixture styles.

Every test names the styles folder with `--models-dir`, so the results do not depend on which
trained weights are installed in models/weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pytest
from PIL import Image

from cli.main import main
from tests.fixtures_models import ModelDir, model_dir, synthetic_photos

__all__ = ["model_dir"]  # the session fixture, re-exported for pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    rc: int
    out: str
    err: str


class Cli(Protocol):
    def __call__(self, *argv: str | Path, models: Path | None = None) -> Run: ...


@pytest.fixture
def cli(model_dir: ModelDir, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*argv: str | Path, models: Path | None = None) -> Run:
        capsys.readouterr()
        rc = main(["--models-dir", str(models or model_dir.path), *map(str, argv)])
        captured = capsys.readouterr()
        return Run(rc, captured.out, captured.err)

    return run


def save(path: Path, rgb: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(rgb, mode).save(path)
    return path


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return save(tmp_path / "photo.jpg", synthetic_photos(1, (200, 300))[0])


# --------------------------------------------------------------------------- help and styles


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("convert", "styles", "models"):
        assert command in out


def test_console_script_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("animebot")
    if not script.exists():
        pytest.skip("package not installed with its console script (pip install -e .)")
    done = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "convert" in done.stdout


def test_styles_table_shows_precision_and_gate_note(cli: Cli, model_dir: ModelDir) -> None:
    r = cli("styles")
    assert r.rc == 0
    lines = r.out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "KIND",
        "TITLE",
        "FILE",
        "PARAMS",
        "SIZE",
        "PRECISION",
        "VERSION",
        "SOURCE",
    ]
    toon = next(line for line in lines if line.startswith("toon "))
    face = next(line for line in lines if line.startswith("toon_face "))
    assert "scene" in toon and "toon.int8.onnx" in toon and " int8 " in toon and "KB" in toon
    assert "face" in face and "toon_face.fp32.onnx" in face and "fp32*" in face
    assert any("* toon_face: INT8 failed the quality gate" in line for line in lines)


def test_styles_json_and_models_list_alias(cli: Cli, model_dir: ModelDir) -> None:
    r = cli("styles", "--json")
    rows = {row["name"]: row for row in json.loads(r.out)}
    assert set(rows) == {"toon", "toon_face"}
    toon, face = rows["toon"], rows["toon_face"]
    assert toon["kind"] == "scene" and toon["precision"] == "int8" and toon["gate_note"] is None
    assert face["precision"] == "fp32" and "1000.0 dB" in face["gate_note"]
    size = (model_dir.path / "toon" / "toon.int8.onnx").stat().st_size
    assert toon["size_kb"] == round(size / 1024) and toon["parameters"] > 0
    assert len(toon["version"]) == 16
    assert json.loads(cli("models", "list", "--json").out) == json.loads(r.out)


def test_no_styles_installed(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    assert "no styles installed" in cli("styles", models=empty).out
    r = cli("convert", tmp_path / "x.jpg", models=empty)
    assert r.rc == 2 and "no styles installed" in r.err and "Traceback" not in r.err


# --------------------------------------------------------------------------- convert


def test_convert_writes_next_to_input_with_the_input_size(cli: Cli, photo: Path) -> None:
    r = cli("convert", photo)
    assert r.rc == 0, r.err
    out = photo.with_name("photo_toon.png")
    with Image.open(out) as im:
        assert (im.format, im.size, im.mode) == ("PNG", (300, 200), "RGB")
    note, line = r.out.splitlines()  # the face model's gate note comes first, once
    assert note.startswith("note: toon_face: ")
    assert line.startswith(f"{photo} -> {out}  300x200  ")
    assert " KB  0 faces  " in line and line.rstrip().endswith(" s")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_results_get_the_mode_the_umask_gives(
    cli: Cli, photo: Path, tmp_path: Path, umask: int, mode: int
) -> None:
    """A result is an ordinary file of the user's: 0644 under the usual umask 022, not the
    0600 a temporary file gets."""
    before = os.umask(umask)
    try:
        r = cli("convert", photo, "-o", tmp_path / "out")
    finally:
        os.umask(before)
    assert r.rc == 0, r.err
    (result,) = (tmp_path / "out").iterdir()  # and no temporary file left beside it
    assert result.name == "photo_toon.png"
    assert stat.S_IMODE(result.stat().st_mode) == mode


def test_convert_formats_and_output_dir(cli: Cli, photo: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out" / "nested"
    assert cli("convert", photo, "-o", out_dir, "--format", "webp").rc == 0
    assert cli("convert", photo, "-o", out_dir, "--format", "jpeg").rc == 0
    with Image.open(out_dir / "photo_toon.webp") as im:
        assert im.format == "WEBP" and im.size == (300, 200)
    with Image.open(out_dir / "photo_toon.jpg") as im:
        assert im.format == "JPEG" and im.size == (300, 200)
    assert not (tmp_path / "photo_toon.png").exists()


def test_alpha_input_gives_png_with_its_alpha(cli: Cli, tmp_path: Path) -> None:
    rgb = synthetic_photos(1, (120, 160))[0]
    alpha = np.full((120, 160), 255, np.uint8)
    alpha[:, :60] = 0
    alpha[:, 60:80] = 128
    src = save(tmp_path / "sticker.png", np.dstack([rgb, alpha]), "RGBA")
    r = cli("convert", src, "--format", "jpeg", "-o", tmp_path / "out")
    assert r.rc == 0, r.err
    out = tmp_path / "out" / "sticker_toon.png"  # jpeg cannot hold alpha: png instead
    with Image.open(out) as im:
        assert im.mode == "RGBA" and im.size == (160, 120)
        assert np.array_equal(np.asarray(im)[..., 3], alpha)
    assert not (tmp_path / "out" / "sticker_toon.jpg").exists()


def test_bad_file_among_good_ones(cli: Cli, tmp_path: Path) -> None:
    a, b = synthetic_photos(2, (64, 96))
    good1 = save(tmp_path / "a.png", a)
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"this is a text file, not a JPEG\n" * 10)
    good2 = save(tmp_path / "c.png", b)
    missing = tmp_path / "gone.jpg"
    r = cli("convert", good1, bad, good2, missing)
    assert r.rc == 1
    assert (tmp_path / "a_toon.png").is_file() and (tmp_path / "c_toon.png").is_file()
    assert not (tmp_path / "b_toon.png").exists()
    err = r.err.splitlines()
    assert f"{bad}: failed: That file is not an image." in err[0]
    assert err[1] == f"{missing}: failed: file not found: {missing}"
    assert len(err) == 2 and "Traceback" not in r.err and "text file" not in r.err
    assert r.out.splitlines()[-1] == "2 converted, 2 failed"


def test_max_size_scales_down_and_says_so(cli: Cli, tmp_path: Path) -> None:
    src = save(tmp_path / "big.png", synthetic_photos(1, (300, 400))[0])
    r = cli("convert", src, "--max-size", "200")
    assert r.rc == 0
    with Image.open(tmp_path / "big_toon.png") as im:
        assert im.size == (200, 150)
    assert "200x150" in r.out and "scaled it down" in r.out
    small = cli("convert", src, "--max-size", "1000", "-o", tmp_path / "o")
    with Image.open(tmp_path / "o" / "big_toon.png") as im:
        assert im.size == (400, 300)  # never upscaled
    assert "scaled" not in small.out


def test_keeps_sizes_beyond_the_services_4096_px_cap(cli: Cli, tmp_path: Path) -> None:
    wide = np.tile(synthetic_photos(1, (48, 700))[0], (1, 6, 1))  # 4200 x 48: three tiles
    r = cli("convert", save(tmp_path / "wide.png", wide), "--no-faces")
    assert r.rc == 0 and "4200x48" in r.out and "scaled" not in r.out
    with Image.open(tmp_path / "wide_toon.png") as im:
        assert im.size == (4200, 48)


def test_side_by_side_doubles_the_width(cli: Cli, photo: Path) -> None:
    assert cli("convert", photo, "--side-by-side").rc == 0
    with Image.open(photo.with_name("photo_toon.png")) as im:
        assert im.size == (600, 200)
        left = np.asarray(im)[:, :300].astype(int)
    with Image.open(photo) as original:
        assert np.abs(left - np.asarray(original).astype(int)).mean() < 1  # the original


def test_directory_expands_to_its_images(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    a, b = synthetic_photos(2, (64, 64))
    save(folder / "b.jpg", a)
    save(folder / "a.png", b)
    save(folder / ".hidden.png", a)
    save(folder / "a_toon.png", b)  # an earlier result: not converted again
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    save(folder / "sub" / "deep.png", a)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("convert", folder, empty, "-o", tmp_path / "out")
    assert r.rc == 1  # the empty folder counts as a failure
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_toon.png", "b_toon.png"]
    assert [line.split(" -> ")[0] for line in r.out.splitlines() if " -> " in line] == [
        str(folder / "a.png"),
        str(folder / "b.jpg"),
    ]
    assert r.err.strip() == f"{empty}: no images found in this folder"


def test_same_stem_inputs_do_not_overwrite_each_other(cli: Cli, tmp_path: Path) -> None:
    a, b = synthetic_photos(2, (64, 64))
    r = cli("convert", save(tmp_path / "x.jpg", a), save(tmp_path / "x.png", b))
    assert r.rc == 0
    assert (tmp_path / "x_toon.png").is_file() and (tmp_path / "x_toon-2.png").is_file()


def test_gate_note_once_and_faces_off(cli: Cli, tmp_path: Path) -> None:
    a, b = synthetic_photos(2, (64, 64))
    files = [save(tmp_path / "a.png", a), save(tmp_path / "b.png", b)]
    r = cli("convert", *files)
    assert r.out.count("INT8 failed the quality gate") == 1
    assert r.out.splitlines()[0].startswith("note: toon_face: INT8 failed the quality gate")
    off = cli("convert", *files, "--no-faces")
    assert "quality gate" not in off.out
    assert all("faces off" in line for line in off.out.splitlines()[:2])


def test_unknown_style_is_one_line_exit_2(cli: Cli, photo: Path) -> None:
    r = cli("convert", photo, "--style", "picasso")
    assert r.rc == 2
    assert r.err.strip() == "animebot: unknown style 'picasso'; available: toon"
    face_only = cli("convert", photo, "--style", "toon_face")  # a face model is no scene style
    assert face_only.rc == 2
    assert face_only.err.strip() == "animebot: unknown style 'toon_face'; available: toon"
    verbose = cli("--verbose", "convert", photo, "--style", "picasso")
    assert "Traceback" in verbose.err and verbose.rc == 2


def test_an_unreadable_model_file_is_named_without_exception_names(
    cli: Cli, model_dir: ModelDir, photo: Path, tmp_path: Path
) -> None:
    """A model file that passes its hash check but ONNX Runtime cannot read (written over by a
    broken export): one line that says what to do, not an onnxruntime exception class name."""
    broken = tmp_path / "models"
    shutil.copytree(model_dir.path, broken)
    meta_path = broken / "toon" / "model.json"
    meta = json.loads(meta_path.read_text())
    model_file = broken / "toon" / meta["files"][meta["serve"]]
    model_file.write_bytes(b"not an onnx model at all")
    meta["version"] = hashlib.sha256(model_file.read_bytes()).hexdigest()[:16]
    meta_path.write_text(json.dumps(meta))
    r = cli("convert", photo, models=broken)
    assert r.rc == 2
    assert r.err.strip() == (
        f"animebot: {model_file} could not be loaded: ONNX Runtime cannot read it (a damaged "
        "file, or not an ONNX model); reinstall the style or run with --verbose"
    )


def test_group_photo_reports_six_faces(cli: Cli, photos_dir: Path, tmp_path: Path) -> None:
    r = cli("convert", photos_dir / "multi_face_group6_frontal.jpg", "-o", tmp_path)
    assert r.rc == 0
    assert "1200x800" in r.out and "  6 faces  " in r.out


def test_shared_edge_cases(cli: Cli, edge_dir: Path, tmp_path: Path) -> None:
    names = ["animated.gif", "truncated.jpg", "empty.jpg", "tiny_8x8.png", "alpha_rgba.png"]
    r = cli("convert", *(edge_dir / n for n in names), "-o", tmp_path)
    assert r.rc == 1
    # an animated GIF is a clip now: every frame, as an MP4
    assert "animated_toon.mp4  300x200  6 frames" in r.out
    failed = [line for line in r.err.splitlines() if ": failed: " in line]  # not the tqdm bar
    err = {line.split(": failed: ")[0]: line.split(": failed: ")[1] for line in failed}
    assert err[str(edge_dir / "truncated.jpg")].startswith("That image is damaged")
    assert err[str(edge_dir / "empty.jpg")].startswith("That file is empty")
    assert err[str(edge_dir / "tiny_8x8.png")].startswith("That image is too small")
    with Image.open(tmp_path / "alpha_rgba_toon.png") as im:
        assert im.mode == "RGBA"


def test_convert_never_imports_torch(model_dir: ModelDir, photo: Path, tmp_path: Path) -> None:
    code = f"""
import sys
from cli.main import main
rc = main(["--models-dir", {str(model_dir.path)!r}, "convert", {str(photo)!r}, "-o",
           {str(tmp_path / "out")!r}])
assert rc == 0, rc
assert "onnxruntime" in sys.modules
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "NO-TORCH"
    assert (tmp_path / "out" / "photo_toon.png").is_file()


def test_convert_a_clip_writes_an_mp4_with_a_progress_bar(
    cli: Cli, photos_dir: Path, tmp_path: Path
) -> None:
    from tests.clipgen import make_mp4, probe_output

    src = make_mp4(
        tmp_path / "clip.mp4", photos_dir / "street_shopfront.jpg", seconds=1, fps=8, audio=True
    )
    r = cli("convert", src, "-o", tmp_path / "out")
    assert r.rc == 0, r.err
    assert "clip_toon.mp4  320x240  8 frames 8 fps 1.00 s  audio" in r.out
    assert "8/8" in r.err  # tqdm's bar, on stderr
    info = probe_output((tmp_path / "out" / "clip_toon.mp4").read_bytes())
    assert (info["frames"], info["audio"]) == (8, "aac")
