"""Issue #11, point 2 (memory bounded for real) and the truncated mp4 of point 5: rows of the bad-input table.

Each row runs `run_masks`, the core call of `insertanywhere masks` (the CLI's flags map one to one onto
its arguments), on a small synthetic video. Large inputs are simulated small: a tiny memory budget
stands in for the machine's memory, so "4K x 300 frames" becomes "more frames than the budget holds".
Rows that must be refused before decoding fail if the decoder reported a single frame.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from insertanywhere import memory
from insertanywhere.masks.pipeline import run_masks
from insertanywhere.video import read_video
from table import Case

W, H = 320, 192


def _frames(count: int) -> np.ndarray:
    """Noise: every frame costs about as many bytes, so half the file holds about half the frames."""
    return np.random.default_rng(0).integers(0, 255, (count, H, W, 3), dtype=np.uint8)


def _write(path: Path, count: int, options: dict | None = None) -> Path:
    import av

    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=Fraction(16))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for frame in _frames(count):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _half_cut(tmp: Path) -> Path:
    """A 33-frame faststart mp4 (index first) with its second half missing, as an interrupted upload."""
    whole = _write(tmp / "whole.mp4", 33, {"movflags": "faststart"})
    cut = tmp / "half.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


def _mesh(tmp: Path) -> Path:
    import trimesh

    path = tmp / "box.ply"
    trimesh.creation.box((0.2, 0.2, 0.2)).export(path)
    return path


class _DecodeLog:
    """progress factory for run_masks that records how many frames were decoded."""

    def __init__(self):
        self.decoded = 0

    def __call__(self, label: str):
        def update(done: int, total: int) -> None:
            if label == "decode":
                self.decoded = max(self.decoded, done)
        return update


def _masks(tmp: Path, video: Path, log: _DecodeLog | None = None, **kw):
    placement = {"anchor": [W / 2, H * 0.7], "height_px": 20}
    result = run_masks(video, placement, None, object_mesh=_mesh(tmp), progress=log, **kw)
    return result.track.warnings


def _budget_for(frames: float, height: int = H, width: int = W) -> float:
    """A memory budget in GiB that holds `frames` frames of height x width (and not one more)."""
    return memory.working_bytes(frames, height, width) / memory.GIB


def half_cut_mp4(tmp: Path):
    return _masks(tmp, _half_cut(tmp))


def half_cut_mp4_capped(tmp: Path):
    frames, _ = read_video(_half_cut(tmp), memory.Selection(frame_cap=5, fit="none"))
    assert len(frames) == 5


def _over_budget(tmp: Path, name: str, frames: int, cap, budget_frames: float, max_decoded: int):
    """Run a selection over a budget of `budget_frames` frames; at most `max_decoded` may be decoded."""
    video = _write(tmp / name, frames)
    log = _DecodeLog()
    try:
        return _masks(tmp, video, log, selection=memory.Selection(frame_cap=cap, fit="crop"),
                      memory_budget=_budget_for(budget_frames))
    finally:
        assert log.decoded <= max_decoded, f"decoded {log.decoded} frames, more than {max_decoded}"


def no_count_mkv(tmp: Path):
    return _over_budget(tmp, "nocount.mkv", 40, 10_000, 10.5, max_decoded=0)  # refused before decoding


def no_count_mkv_no_cap(tmp: Path):
    return _over_budget(tmp, "nocount.mkv", 40, None, 10.5, max_decoded=10)  # refused by the running count


def planned_over_budget(tmp: Path):
    return _over_budget(tmp, "long.mp4", 60, 10_000, 20.5, max_decoded=0)


def negative_max_side(tmp: Path):
    return _masks(tmp, _write(tmp / "v.mp4", 9), selection=memory.Selection(max_side=-16, fit="crop"))


def negative_budget(tmp: Path):
    return _masks(tmp, _write(tmp / "v.mp4", 9), memory_budget=-1.0)


def env_budget_not_a_number(tmp: Path):
    old = os.environ.get(memory.ENV_BUDGET)
    os.environ[memory.ENV_BUDGET] = "lots"
    try:
        return _masks(tmp, _write(tmp / "v.mp4", 9))
    finally:
        if old is None:
            del os.environ[memory.ENV_BUDGET]
        else:
            os.environ[memory.ENV_BUDGET] = old


CASES = [
    Case("Video: half-cut faststart mp4 (33 frames in its index, file cut in half)", half_cut_mp4,
         r"^error: '.*half\.mp4' ends after 1\d of the 33 frames its index lists: the file is truncated"
         r".*set the frame cap to 1\d or less"),
    Case("Video: half-cut faststart mp4, frame cap 5 (inside the intact half)", half_cut_mp4_capped, r"^ok$"),
    Case("Video: .mkv with no frame count, frame cap 10000 over the memory budget (4K x300 .mkv, simulated small)",
         no_count_mkv,
         r"^error: '.*nocount\.mkv' \(no frame count in its container: up to the frame cap\): 10000 frames of "
         r"320x192 would need .* Any one of these fits: frame_cap 10 \(--frame-cap; now 10000\)\. Or allow"),
    Case("Video: .mkv with no frame count, no frame cap (library call), more frames than memory holds",
         no_count_mkv_no_cap,
         r"^error: '.*nocount\.mkv' has more frames than its container lists \(no count\): 11 frames of 320x192 "
         r"would need .* Any one of these fits: frame_cap 10 \(--frame-cap; now none\)"),
    Case("Video: 60 frames planned over the memory budget (832x480 x600 took 7 GiB, simulated small)",
         planned_over_budget,
         r"^error: '.*long\.mp4': 60 frames of 320x192 would need about .* MiB for the mask pipeline.* more than "
         r"the .* MiB it may use \(--memory-budget .*\)\. Any one of these fits: frame_cap 20 \(--frame-cap; now "
         r"10000\); stride 3 \(--stride; now 1\); start 40 \(--start; now 0\); max_side \d+ \(--max-side"),
    Case("CLI: --max-side -16", negative_max_side, r"^error: Invalid frame selection.*max_side=-16.*max_side >= 0"),
    Case("CLI: --memory-budget -1", negative_budget, r"^error: The memory budget must be a number of GiB >= 0"),
    Case("Environment: INSERTANYWHERE_MEMORY_BUDGET_GB=lots", env_budget_not_a_number,
         r"^error: INSERTANYWHERE_MEMORY_BUDGET_GB='lots' is not a number"),
]
