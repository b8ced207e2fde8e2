"""What the first web conversion after start costs, against the ones after it.

    python bench/first_request.py [--photos 4] [--runs 3]

Each run starts a real `animebot serve` on a free port with an empty data folder, waits for
`/readyz`, opens the page, then sends photos to `POST /api/convert` one after the other and
prints the wall time of each request as the client saw it, with the server's compute time.
The last photo is the first one again, re-encoded (other pixels: no cache hit), so the first
request and a warm one of the same photo can be compared within each run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

from models.pairs import shared_dir

PHOTOS = (
    "face_single_lowlight.jpg",
    "street_shopfront.jpg",
    "portrait_fullbody_single.jpg",
    "street_railroad_crossing.jpg",
    "multi_face_three_men_vintage.jpg",
    "city_tokyo_tower.jpg",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def one_run(photos: list[tuple[str, bytes]]) -> list[tuple[str, float, str]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "ANIMEBOT_DATA": data, "ANIMEBOT_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--port",
            str(port),
            cwd=ROOT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        rows: list[tuple[str, float, str]] = []
        try:
            async with aiohttp.ClientSession() as http:
                while True:  # the process is starting: poll until it says it is ready
                    try:
                        async with http.get(base + "/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    if process.returncode is not None:
                        raise SystemExit("animebot serve exited during start-up")
                    await asyncio.sleep(0.05)
                rows.append(("ready after start", time.perf_counter() - started, ""))
                t = time.perf_counter()
                async with http.get(base + "/") as r:
                    await r.read()
                rows.append(("GET /", time.perf_counter() - t, ""))
                for name, data in photos:
                    form = aiohttp.FormData()
                    form.add_field("image", data, filename=name, content_type="image/jpeg")
                    form.add_field("format", "jpeg")
                    t = time.perf_counter()
                    async with http.post(base + "/api/convert", data=form) as r:
                        await r.read()
                        status = r.status
                        compute = r.headers.get("X-Animebot-Compute-Ms", "?")
                        size = r.headers.get("X-Animebot-Size", "?")
                    wall = time.perf_counter() - t
                    rows.append(
                        (f"POST {name}", wall, f"HTTP {status}, {size}, compute {compute} ms")
                    )
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()
    return rows


async def main(args: argparse.Namespace) -> None:
    folder = shared_dir() / "data" / "photos"
    photos = [(n, (folder / n).read_bytes()) for n in PHOTOS[: args.photos]]
    with Image.open(folder / PHOTOS[0]) as im:  # the first photo again, other JPEG pixels
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="JPEG", quality=90)
    photos.append((f"{PHOTOS[0]} again", buf.getvalue()))
    firsts: list[float] = []
    agains: list[float] = []
    laters: list[float] = []
    for run in range(args.runs):
        rows = await one_run(photos)
        print(f"run {run + 1}")
        for label, seconds, extra in rows:
            print(f"  {label:<42} {seconds * 1000:7.0f} ms  {extra}")
        posts = [s for label, s, _ in rows if label.startswith("POST")]
        firsts.append(posts[0])
        agains.append(posts[-1])
        laters.extend(posts[1:])

    def ms(values: list[float]) -> str:
        return ", ".join(f"{v * 1000:.0f}" for v in values)

    print(
        f"first conversion: median {statistics.median(firsts) * 1000:.0f} ms ({ms(firsts)}); "
        f"the same photo later: median {statistics.median(agains) * 1000:.0f} ms "
        f"({ms(agains)}); every later request: median {statistics.median(laters) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
