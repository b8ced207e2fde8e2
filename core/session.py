"""One ONNX Runtime session per style, shared by every job.

ONNX Runtime sessions are safe to call from several threads at once, so one session serves all
workers. Each call runs on `threads` intra-op threads (default 1): with one image per core, two
jobs use two cores without fighting over one thread pool.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from core.registry import StyleSpec

RGB = NDArray[np.uint8]
THUMB_SIDE = 64
THUMB_INPUT = "thumb"


def thumbnail(rgb: RGB) -> NDArray[np.float32]:
    """The whole photo at 64x64, NCHW in [-1, 1]: the second input of models that grade by
    whole-photo statistics (a student with `overview`). Every tile of a photo gets the same one."""
    small = cv2.resize(rgb, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
    x = small.astype(np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def takes_thumb(session: ort.InferenceSession) -> bool:
    """Whether the model has the whole-photo `thumb` input besides the photo."""
    return any(i.name == THUMB_INPUT for i in session.get_inputs())


def make_session(path: str, threads: int, spin: bool = False) -> ort.InferenceSession:
    """`spin`: let the intra-op threads busy-wait between operators (ONNX Runtime's default).
    With two threads on one 512 px image it cut latency from 128 to 90 ms here (the model runs
    ~100 short operators, and waking a sleeping thread for each one costs more than the work on
    these virtual CPUs), but spinning threads burn cores that other jobs need: only worth it
    when jobs x threads fit the cores (see EngineConfig.spin)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The memory arena stays on: without it every large tensor is a fresh mmap and its page
    # faults doubled inference time (measured 241 -> 448 ms at 1280x853); the engine's tiling
    # bounds what the arena can grow to, and `release_memory` gives it back after a burst.
    # Memory patterns stay off: ONNX Runtime keeps one planned block per input shape on top of
    # the arena, and every photo has its own shape (two runs at 1280x960 held 378 MB with
    # patterns, 243 MB without; 2 threads x 8 photos of varied shapes 748 vs 568 MB).
    options.enable_mem_pattern = False
    use_shared_arena(options)
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


_ARENA_LOCK = threading.Lock()
_arena_registered = False


def use_shared_arena(options: ort.SessionOptions) -> None:
    """Let a session allocate from the one CPU arena every session of the process shares.

    Each session used to grow an arena of its own (scene styles, the face model, the face
    detector), each to its own high-water mark; sharing, what one model freed another reuses,
    and the engine's pixel budget bounds the whole (2 workers, 8 photos of 1280x960 with three
    faces: peak RSS 524 instead of 630 MB). It grows in doubling regions (kNextPowerOfTwo):
    growing by exactly what is asked made every tensor a region of its own, and free regions
    of one photo's sizes did not fit the next photo's tensors (15 photos of 1280 px, 2 at a
    time: 540 / 483 against 662 / 655 MB)."""
    global _arena_registered
    with _ARENA_LOCK:
        if not _arena_registered:
            info = ort.OrtMemoryInfo(
                "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
            )
            # max_mem 0: no cap; 0: kNextPowerOfTwo; -1: defaults for the rest
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, 0, -1, -1))
            _arena_registered = True
    options.add_session_config_entry("session.use_env_allocators", "1")


def shrink_options() -> ort.RunOptions:
    """Run options that return the arena's unused chunks to the system at the end of a run."""
    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


class StyleSession:
    def __init__(self, spec: StyleSpec, threads: int = 1, spin: bool = False) -> None:
        self.spec = spec
        self._session = make_session(str(spec.model_file), threads, spin)
        self._input = self._session.get_inputs()[0].name
        self.wants_thumb = takes_thumb(self._session)

    def run(self, rgb: RGB, thumb: NDArray[np.float32] | None = None) -> RGB:
        """Stylize an RGB uint8 image of any size (padded to the model's multiple by reflection).

        `thumb`: `thumbnail()` of the whole photo when `rgb` is a tile of it; by default the
        thumbnail of `rgb` itself. Ignored by models without that input."""
        h, w = rgb.shape[:2]
        m = self.spec.multiple
        ph, pw = (-h) % m, (-w) % m
        padded = cv2.copyMakeBorder(rgb, 0, ph, 0, pw, cv2.BORDER_REFLECT_101) if ph or pw else rgb
        # Straight into NCHW, and in place after the run: no float copy of the photo more
        # than the network's input and output (every byte here is per pixel, times two jobs).
        batch = np.empty((1, 3, h + ph, w + pw), np.float32)
        for c in range(3):
            np.multiply(padded[:, :, c], np.float32(1.0 / 127.5), out=batch[0, c])
        batch -= 1.0
        del padded
        feeds = {self._input: batch}
        if self.wants_thumb:
            feeds[THUMB_INPUT] = thumbnail(rgb) if thumb is None else thumb
        y: NDArray[np.float32] = self._session.run(None, feeds)[0]
        del feeds, batch
        out = y[0, :, :h, :w].transpose(1, 2, 0)
        out += 1.0
        out *= 127.5
        np.clip(out, 0, 255, out=out)
        np.rint(out, out=out)  # what .round() does: halves to even
        return out.astype(np.uint8)

    def release_memory(self) -> None:
        """Give the arena's free chunks back (a tiny run with shrinkage; thread-safe: chunks
        in use by a concurrent run stay)."""
        side = -(-THUMB_SIDE // self.spec.multiple) * self.spec.multiple
        tiny = np.zeros((1, 3, side, side), np.float32)
        feeds = {self._input: tiny}
        if self.wants_thumb:
            feeds[THUMB_INPUT] = np.zeros((1, 3, THUMB_SIDE, THUMB_SIDE), np.float32)
        self._session.run(None, feeds, shrink_options())
