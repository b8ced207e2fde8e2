"""Clip benchmark: frames/s at 480p and 720p, the total time of a 10 s 480p 30 fps clip, peak
RSS, and flicker, all through the service as a bot uses it (2 workers, fair queue, cache off).

    python bench/video.py [--seconds 10] [--workers 2] [--skip-720]

Clips are made from the shared photos with PyAV (a slow pan, with an audio track). Baselines
measured in the same run:
- speed: the same 480p frames sent as separate photos (JPEG in, JPEG out, two at a time), so
  the ratio says what streaming a clip saves or costs against photo-by-photo;
- flicker: the clip pipeline with its clip-wide colour grade and face tracking switched off
  (every frame graded by its own thumbnail, faces detected on every frame), on a clip with
  faces. Flicker = mean |frame-to-frame difference| of the output / that of the input.
Peak RSS is the process's high-water mark (ru_maxrss) after everything, clips made in a
child process so their generation does not count; the high-water mark after each stage says
which stage set it, and the RSS at the end what stays once the clips are done.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

from models.pairs import shared_dir
from service.clips import ClipReply, ClipRequest, ClipService
from service.convert import ConversionRequest
from service.runtime import Runtime
from service.settings import Settings

PHOTOS = shared_dir() / "data" / "photos"
SCENE = PHOTOS / "street_shopfront.jpg"
FACES = PHOTOS / "multi_face_three_men_vintage.jpg"


def make_clips(folder: Path, seconds: float, skip_720: bool) -> dict[str, Path]:
    """Clips made in a child process (their frames never count in this one's peak RSS)."""
    specs = {
        "480p": (SCENE, seconds, 854, 480),
        "faces": (FACES, 2.0, 854, 480),
    }
    if not skip_720:
        specs["720p"] = (SCENE, 3.0, 1280, 720)
    code = "\n".join(
        ["import sys; from pathlib import Path", f"sys.path.insert(0, {str(ROOT)!r})"]
        + ["from tests.clipgen import make_mp4"]
        + [
            f"make_mp4(Path({str(folder / (k + '.mp4'))!r}), Path({str(p)!r}), seconds={s}, "
            f"fps=30, width={w}, height={h}, audio=True)"
            for k, (p, s, w, h) in specs.items()
        ]
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    return {k: folder / f"{k}.mp4" for k in specs}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float:
    """The resident set now (Linux); 0 where /proc is missing."""
    try:
        with Path("/proc/self/status").open() as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s() -> float:
    """CPU seconds this process used (every thread): steadier than wall time when other jobs
    share the cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def clip_run(service: ClipService, data: bytes, user: int) -> tuple[float, ClipReply]:
    started = time.perf_counter()
    reply = await service.convert(ClipRequest("bench", user, data, is_admin=True))
    return time.perf_counter() - started, reply


async def photo_baseline(runtime: Runtime, clip: Path, count: int) -> float:
    """Frames/s of `count` frames of `clip` sent as JPEG photos, two at a time."""
    import av

    from core.imageio import encode

    jpegs = []
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(container.streams.video[0])):
            if i >= count:
                break
            jpegs.append(encode(frame.to_ndarray(format="rgb24"), fmt="jpeg").data)
    queue = list(enumerate(jpegs))
    started = time.perf_counter()

    async def worker() -> None:
        while queue:
            i, data = queue.pop()
            await runtime.service.convert(
                ConversionRequest("bench", 10_000 + i, data, is_admin=True, keep_input=False)
            )

    await asyncio.gather(worker(), worker())
    return count / (time.perf_counter() - started)


async def flicker_baseline(service: ClipService, data: bytes) -> float:
    """The clip pipeline with per-frame grading and detection (what photos do)."""
    import core.clipstyle as clipstyle

    original = clipstyle.ClipStylizer.batch

    def per_frame(self: clipstyle.ClipStylizer, frames: list, map_fn: object = map) -> list:
        out = []
        for rgb in frames:
            self._thumb = None  # each frame graded by its own thumbnail
            if self._tracks is not None:
                self._tracks.every, self._tracks.smooth, self._tracks.keep = 1, 1.0, 0
            out.extend(original(self, [rgb], map))
        return out

    clipstyle.ClipStylizer.batch = per_frame  # type: ignore[method-assign]
    try:
        # another output cap (no real one): another cache key, so it is computed again
        request = ClipRequest("bench", 99, data, is_admin=True, max_output_bytes=1 << 40)
        reply = await service.convert(request)
    finally:
        clipstyle.ClipStylizer.batch = original  # type: ignore[method-assign]
    return float(reply.flicker)


async def main(args: argparse.Namespace) -> None:
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory(prefix="animebot-bench-video-") as tmp:
        folder = Path(tmp)
        clips = make_clips(folder, args.seconds, args.skip_720)
        settings = Settings(
            data_dir=folder / "data",
            workers=args.workers,
            rate_burst=0,
            daily_quota=0,
            cache_mb=1.0,  # results are stored, but every run below is a different input
            clip_max_side=1280,  # measure real 480p and 720p frames (the default caps at 720)
        )
        runtime = await Runtime.start(settings, warm=True)
        try:
            service = ClipService(runtime.service)
            rss_start = rss_mb()
            stages = {"start-up": rss_start}
            data = clips["480p"].read_bytes()
            cpu = cpu_s()
            seconds, reply = await clip_run(service, data, 1)
            cpu = cpu_s() - cpu
            encoded = reply.clip
            frames = encoded.frames
            print(
                f"480p clip: {encoded.width}x{encoded.height} {frames} frames "
                f"{encoded.seconds:.1f} s at {encoded.fps:g} fps, audio {encoded.has_audio}: "
                f"total {seconds:.1f} s (target <= 30 s), {frames / seconds:.1f} frames/s, "
                f"{cpu:.1f} CPU s ({1000 * cpu / frames:.0f} ms a frame), "
                f"flicker {reply.flicker:.3f}"
            )
            fps_480 = frames / seconds
            stages["480p"] = rss_mb()
            if "720p" in clips:
                seconds, reply = await clip_run(service, clips["720p"].read_bytes(), 2)
                encoded = reply.clip
                frames = encoded.frames
                print(
                    f"720p clip: {encoded.width}x{encoded.height} {frames} frames: "
                    f"{seconds:.1f} s, {frames / seconds:.1f} frames/s"
                )
                stages["720p"] = rss_mb()
            baseline = await photo_baseline(runtime, clips["480p"], args.photo_frames)
            stages["photos"] = rss_mb()
            print(
                f"baseline, the same 480p frames as separate JPEG photos: {baseline:.1f} "
                f"frames/s; clip / photos = {fps_480 / baseline:.2f}x"
            )
            faces = clips["faces"].read_bytes()
            _, reply = await clip_run(service, faces, 3)
            tracked = float(reply.flicker)
            stages["faces"] = rss_mb()
            independent = await flicker_baseline(service, faces)
            stages["flicker baseline"] = rss_mb()
            print(
                f"flicker (output / input frame-to-frame difference), 480p clip with 3 faces: "
                f"{tracked:.3f} with one grade + tracked faces; {independent:.3f} graded and "
                f"detected per frame (baseline); ratio {tracked / independent:.2f}"
            )
            print(
                f"peak RSS: {rss_mb():.0f} MB (target <= 600 MB; {rss_start:.0f} MB after start-up "
                "and warm-up)"
            )
            print(
                "RSS high-water after each stage: "
                + ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
                + f" MB; RSS now {rss_now_mb():.0f} MB"
            )
        finally:
            await runtime.stop()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the 480p clip")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--photo-frames", type=int, default=40, help="frames in the baseline")
    parser.add_argument("--skip-720", action="store_true")
    asyncio.run(main(parser.parse_args()))
