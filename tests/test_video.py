"""core.video: clips made from the shared photos go through decode -> frame fn -> encode and
come out as playable H.264 MP4 of the planned size, rate, length, with the audio copied."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from core.errors import EmptyInput, ImageTooLarge
from core.video import (
    ClipLimits,
    DamagedVideo,
    NotAVideo,
    frame_difference,
    looks_like_clip,
    plan,
    transcode,
    video_kbps,
)
from tests.clipgen import decode_rgb, make_animation, make_mp4, probe_output


def _invert(rgb: np.ndarray) -> np.ndarray:
    return 255 - rgb


@pytest.fixture
def photo(photos_dir: Path) -> Path:
    return photos_dir / "street_shopfront.jpg"


def test_mp4_with_audio_keeps_length_rate_and_audio(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "a.mp4", photo, seconds=2, fps=24, audio=True)
    clip = plan(src, ClipLimits())
    assert (clip.frames, clip.width, clip.height, float(clip.fps)) == (48, 320, 240, 24.0)
    out = transcode(src, clip, _invert)
    info = probe_output(out.data)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"], info["frames"]) == (320, 240, 48)
    assert abs(float(info["duration_s"]) - 2.0) < 0.1  # type: ignore[arg-type]
    assert info["audio"] == "aac" and out.has_audio
    # the frame fn really ran: the output is the inverted input (up to compression)
    first_in, first_out = decode_rgb(src.read_bytes())[0], decode_rgb(out.data)[0]
    assert np.mean(np.abs(255 - first_in.astype(int) - first_out.astype(int))) < 8


def test_faststart_puts_the_index_first(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "a.mp4", photo, seconds=1, fps=10)
    data = transcode(src, plan(src, ClipLimits()), _invert).data
    assert data.index(b"moov") < data.index(b"mdat")


def test_variable_frame_rate_comes_out_constant_with_the_same_timing(
    tmp_path: Path, photo: Path
) -> None:
    src = make_mp4(tmp_path / "vfr.mp4", photo, seconds=2, fps=20, vfr=True)
    clip = plan(src, ClipLimits())
    out = transcode(src, clip, lambda rgb: rgb)
    info = probe_output(out.data)
    assert abs(float(info["duration_s"]) - 2.0) < 0.15  # type: ignore[arg-type]
    assert info["frames"] == clip.frames
    assert abs(float(clip.fps) - 20) < 1.0


def test_high_frame_rate_is_capped_by_dropping_frames_evenly(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "60.mp4", photo, seconds=1, fps=60)
    clip = plan(src, ClipLimits(max_fps=30))
    assert float(clip.fps) == 30 and clip.frames == 30 and "fps_capped" in clip.notes
    frames = decode_rgb(transcode(src, clip, lambda rgb: rgb).data)
    originals = decode_rgb(src.read_bytes())
    # output frame k is input frame 2k: every other frame, evenly
    for k in (0, 7, 29):
        assert np.mean(np.abs(frames[k].astype(int) - originals[2 * k].astype(int))) < 6


def test_rotated_phone_video_is_turned_upright(tmp_path: Path) -> None:
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(-90)  # what a phone held upright writes: turn clockwise
        for _ in range(5):
            rgb = np.zeros((32, 64, 3), np.uint8)
            rgb[:, :8, 0] = 255  # a red band on the stored frame's left edge
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    clip = plan(path, ClipLimits())
    assert (clip.info.rotation, clip.width, clip.height) == (270, 32, 64)
    out = transcode(path, clip, lambda rgb: rgb)
    info = probe_output(out.data)
    assert (info["width"], info["height"], info["rotation"]) == (32, 64, 0.0)
    upright = decode_rgb(out.data)[0]
    assert upright[:6, :, 0].mean() > 200 and upright[-20:, :, 0].mean() < 40  # band on top


def test_one_frame_gif_gives_one_frame(photo: Path) -> None:
    data = make_animation(photo, frames=1)
    clip = plan(data, ClipLimits())
    assert clip.frames == 1
    assert probe_output(transcode(data, clip, _invert).data)["frames"] == 1


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_gif_and_webp(photo: Path, fmt: str) -> None:
    data = make_animation(photo, fmt=fmt, frames=12, delay_ms=80)
    assert looks_like_clip(data)
    clip = plan(data, ClipLimits())
    assert (clip.frames, float(clip.fps), clip.width, clip.height) == (12, 12.5, 200, 150)
    info = probe_output(transcode(data, clip, _invert).data)
    assert info["frames"] == 12 and abs(float(info["duration_s"]) - 0.96) < 0.05  # type: ignore[arg-type]


def test_a_still_photo_is_not_a_clip(photos_dir: Path) -> None:
    assert not looks_like_clip((photos_dir / "street_shopfront.jpg").read_bytes())


def test_ten_minute_clip_is_cut_without_decoding_it_all(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "long.mp4", photo, seconds=600, fps=2, width=64, height=48)
    clip = plan(src, ClipLimits(max_seconds=15))
    assert clip.info.duration_s > 590 and "cut" in clip.notes
    assert clip.frames == 30 and clip.seconds == 15
    from core.video import ClipJob

    job = ClipJob(src, clip)
    while not job.finished:
        job.step(lambda rgb: rgb, 8)
    decoded = job.decoded
    info = probe_output(job.finish().data)
    assert info["frames"] == 30 and abs(float(info["duration_s"]) - 15) < 0.6  # type: ignore[arg-type]
    assert decoded < 40  # of 1200 frames


def test_frame_limit_cuts_the_duration(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "a.mp4", photo, seconds=2, fps=30)
    clip = plan(src, ClipLimits(max_frames=20))
    assert clip.frames == 20 and "cut" in clip.notes


def test_large_frames_are_scaled_down_to_even_sides(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "big.mp4", photo, seconds=0.5, fps=10, width=1280, height=720)
    clip = plan(src, ClipLimits(max_side=500))
    assert (clip.width, clip.height) == (500, 282) and "downscaled" in clip.notes
    info = probe_output(transcode(src, clip, lambda rgb: rgb).data)
    assert (info["width"], info["height"]) == (500, 282)


def test_bit_rate_fits_an_upload_limit(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "a.mp4", photo, seconds=3, fps=30, width=640, height=480)
    clip = plan(src, ClipLimits())
    noisy = np.random.default_rng(0)

    def noise(rgb: np.ndarray) -> np.ndarray:  # hard to compress: the cap must bite
        return noisy.integers(0, 255, rgb.shape, dtype=np.uint8)

    limit = 200_000
    assert len(transcode(src, clip, noise).data) > limit  # uncapped it would not fit
    assert len(transcode(src, clip, noise, max_bytes=limit).data) <= limit
    assert video_kbps(0, 10) == 0


def test_metadata_is_not_copied(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "a.mp4", photo, seconds=0.5, fps=10)
    tagged = tmp_path / "tagged.mp4"
    with av.open(str(src)) as inp, av.open(str(tagged), "w") as out:
        out.metadata["location"] = "+35.6586+139.7454/"
        out.metadata["title"] = "private"
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    assert "location" in probe_output(tagged.read_bytes())["metadata"]  # type: ignore[operator]
    data = transcode(tagged, plan(tagged, ClipLimits()), lambda rgb: rgb).data
    assert b"139.7454" not in data and b"private" not in data and b"Lavf" not in data


def test_bad_inputs_raise_typed_errors(tmp_path: Path, photo: Path) -> None:
    with pytest.raises(EmptyInput):
        plan(b"", ClipLimits())
    with pytest.raises(NotAVideo):
        plan(b"this is a text file, not a video" * 20, ClipLimits())
    with pytest.raises(DamagedVideo):
        plan(b"\x00\x00\x00\x18ftypisom" + b"garbage" * 50, ClipLimits())
    src = make_mp4(tmp_path / "a.mp4", photo, seconds=1, fps=10)
    with pytest.raises(ImageTooLarge):
        plan(src, ClipLimits(max_bytes=1000))


def test_damaged_mp4_is_refused_or_converted_as_far_as_it_goes(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "a.mp4", photo, seconds=2, fps=10)
    data = src.read_bytes()
    cut = data[: len(data) // 2]  # moov at the end (no faststart): the index is gone
    with pytest.raises((NotAVideo, DamagedVideo)):
        transcode(cut, plan(cut, ClipLimits()), lambda rgb: rgb)
    # payload damaged in the middle: whatever decodes comes out as a full-length clip
    damaged = bytearray(data)
    mid = data.index(b"mdat") + 8 + (len(data) - data.index(b"mdat")) // 3
    damaged[mid : mid + 4000] = bytes(4000)
    clip = plan(bytes(damaged), ClipLimits())
    out = transcode(bytes(damaged), clip, lambda rgb: rgb)
    assert probe_output(out.data)["frames"] == clip.frames


def test_webm_with_opus_audio(tmp_path: Path, photo: Path) -> None:
    src = make_mp4(tmp_path / "a.webm", photo, seconds=1, fps=24, audio=True, container="webm")
    out = transcode(src, plan(src, ClipLimits()), _invert)
    info = probe_output(out.data)
    assert info["audio"] == "opus" and info["frames"] == 24


def test_a_clip_as_a_gif_loops_with_one_palette(tmp_path: Path, photo: Path) -> None:
    from PIL import Image

    from core.video import to_gif

    src = make_mp4(tmp_path / "a.mp4", photo, seconds=1, fps=10, width=160, height=120)
    mp4 = transcode(src, plan(src, ClipLimits()), _invert).data
    gif = to_gif(mp4)
    assert gif is not None
    with Image.open(io.BytesIO(gif)) as im:
        assert (im.n_frames, im.size, im.info["loop"], im.info["duration"]) == (
            10,
            (160, 120),
            0,
            100,
        )
        first = np.asarray(im.convert("RGB"))
    assert np.mean(np.abs(first.astype(int) - decode_rgb(mp4)[0].astype(int))) < 6
    assert to_gif(mp4, max_bytes=len(gif) // 2) is None  # does not fit: the caller keeps the MP4


def test_sticker_sizes_put_the_longer_side_at_exactly_512() -> None:
    from core.video import sticker_size

    assert sticker_size(256, 192) == (512, 384)  # scaled up
    assert sticker_size(720, 1280) == (288, 512)  # scaled down, portrait
    assert sticker_size(300, 300) == (512, 512)


def test_a_sticker_is_encoded_again_at_a_lower_rate_until_it_fits(
    tmp_path: Path, photo: Path
) -> None:
    from core.video import can_make_stickers, to_sticker

    if not can_make_stickers():
        pytest.skip("this PyAV build has no VP9 encoder")
    mp4 = make_mp4(tmp_path / "c.mp4", photo, seconds=2, fps=15, width=320, height=240)
    small = to_sticker(mp4.read_bytes(), max_bytes=30_000)
    assert len(small.data) <= 30_000
    info = probe_output(small.data)
    assert (info["codec"], info["width"], info["height"], info["frames"]) == ("vp9", 512, 384, 30)
    assert info["audio"] is None and set(info["metadata"]) <= {"encoder"}  # no version, no tags


def test_frame_difference_is_the_mean_absolute_difference() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    expected = float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))
    assert abs(frame_difference(a, b) - expected) < 1e-9
    assert frame_difference(a, a) == 0.0


def test_frames_identical_to_the_one_before_are_not_stylized_again(
    tmp_path: Path, photo: Path
) -> None:
    """A lossless clip holding each of 4 pictures for 3 frames: 4 frames are stylized, the 8
    others reuse the result before them, and every one of the 12 is written in its place."""
    from core.video import ClipJob
    from tests.clipgen import pan_frames

    path = tmp_path / "held.mp4"
    pictures = list(pan_frames(photo, 160, 120, 4))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"qp": "0"}  # lossless: held frames decode to the same pixels
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(pictures[i // 3], format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    clip = plan(path, ClipLimits())
    assert clip.frames == 12
    stylized: list[np.ndarray] = []

    def convert(batch: list[np.ndarray]) -> list[np.ndarray]:
        stylized.extend(batch)
        return [_invert(rgb) for rgb in batch]

    job = ClipJob(path, clip)
    while not job.finished:
        job.step(convert, 5)
    result = job.finish()
    assert (len(stylized), job.reused) == (4, 8)
    frames = decode_rgb(result.data)
    assert len(frames) == 12
    diffs = [frame_difference(frames[i], frames[i + 1]) for i in range(11)]
    held = [d for i, d in enumerate(diffs) if i % 3 != 2]
    changes = [d for i, d in enumerate(diffs) if i % 3 == 2]
    assert max(held) < 1.0 < min(changes)  # held pictures stay put, the pan moves on


def test_nothing_of_a_clip_outlives_its_job(tmp_path: Path, photo: Path) -> None:
    """With the garbage collector off, dropping a finished or cancelled job frees it (and so
    its frames and x264 context) at once. The audio callback once tied the reader back to the
    job, a cycle that held 117 MB per 720p clip until a collection happened to run."""
    import gc
    import weakref

    import core.video
    from core.video import ClipJob, per_frame

    src = make_mp4(tmp_path / "a.mp4", photo, seconds=1, fps=12, audio=True)
    clip = plan(src, ClipLimits())
    assert clip.keep_audio
    gc.disable()
    try:
        job = ClipJob(src, clip)
        while not job.finished:
            job.step(per_frame(_invert), 4)
        assert job.finish().has_audio
        finished = weakref.ref(job)
        del job
        assert finished() is None

        job = ClipJob(src, clip)
        job.step(per_frame(_invert), 4)
        job.cancel()
        cancelled = weakref.ref(job)
        del job
        core.video._ENCODER.submit(lambda: None).result()  # the encoder ran what was queued
        assert cancelled() is None
    finally:
        gc.enable()
