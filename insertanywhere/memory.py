"""How much memory the mask pipeline needs, estimated before decoding (issue #11).

The reconstruction works through the clip a window at a time: its float32 optical flow both ways
lives in a temporary file (reconstruct.spill) and each pass reads the few frames it works on;
per-pair intermediates (motion evidence, grid depth) are reduced to each frame's result at once.
What it keeps per frame is the scene record (frames, depth, moving masks, float16 flow and its
validity) and a few grey / bool grids while it runs; the later stages add the masks and the
anchor video. Its peak resident memory, measured with scripts/measure_memory.py (peak RSS of the
whole `insertanywhere masks` process; table in docs/BENCHMARK.md), stays under

    peak = BASE_BYTES + WINDOW_BYTES + PIXEL_BYTES * H * W
           + frames * (FRAME_BYTES + FULL_BYTES * H * W + GRID_BYTES * H' * W')

on 33..321 frames of 320x192..832x480, with H x W the frames' size and H' x W' the flow grid
(reconstruct.flow.choose_stride: long side <= 512); the constants below are the measured values
rounded up. WINDOW_BYTES and PIXEL_BYTES do not grow with the frame count (the window's working
set: bundle-adjustment slices, per-frame work buffers on the threads, the video encoder).
A depth or disparity input adds DEPTH_BYTES per frame-pixel and DEPTH_GRID_BYTES per frame-cell;
in ComfyUI the float32 IMAGE / MASK tensors add COMFY_BYTES. The check compares the part above
BASE_BYTES (what a run adds to a process that has its libraries loaded) with a budget: by
default MEMORY_FRACTION of the memory available now (/proc/meminfo MemAvailable), or what the user
sets (--memory-budget in GiB, or INSERTANYWHERE_MEMORY_BUDGET_GB for the nodes). The temporary
file (16 bytes per flow-grid cell per frame) takes disk space, not memory: the OS may cache it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional

from .errors import InsertAnywhereError
from .options import is_int

# Measured on the 2-core CPU machine (scripts/measure_memory.py, docs/BENCHMARK.md), rounded up.
BASE_BYTES = 128 * 2**20      # interpreter, numpy / OpenCV / PyAV / trimesh, the object
WINDOW_BYTES = 80 * 2**20     # the windowed reconstruction's working set, whatever the clip's length
PIXEL_BYTES = 200.0           # per pixel of one frame: per-frame work buffers, whatever the frame count
FRAME_BYTES = 64 * 2**10      # per frame whatever its size: correspondences, poses, per-frame records
FULL_BYTES = 16.0             # per frame per full-resolution pixel (frames, depth, moving, masks, anchor)
GRID_BYTES = 12.0             # per frame per flow-grid cell (H' x W': float16 flow both ways, bool grids)
DEPTH_BYTES = 2.0             # per frame-pixel more when a depth / disparity input is given,
DEPTH_GRID_BYTES = 8.0        # and per frame per flow-grid cell (its values on the grid, multi-view correction)
COMFY_BYTES = 32.0            # per frame-pixel more in ComfyUI: float32 IMAGE / MASK tensors in and out

MEMORY_FRACTION = 0.8         # of the available memory, when no budget is set
ENV_BUDGET = "INSERTANYWHERE_MEMORY_BUDGET_GB"
GIB = 2**30


def flow_grid(height: int, width: int) -> tuple[int, int]:
    """(H', W') of the flow grid reconstruct uses for frames of height x width."""
    from .masks.reconstruct.flow import choose_stride

    s = choose_stride(height, width)
    return -(-height // s), -(-width // s)


def per_frame_bytes(height: int, width: int, *, with_depth: bool = False, comfy: bool = False) -> float:
    gh, gw = flow_grid(height, width)
    pixels = height * width
    per_pixel = FULL_BYTES + (DEPTH_BYTES if with_depth else 0.0) + (COMFY_BYTES if comfy else 0.0)
    per_cell = GRID_BYTES + (DEPTH_GRID_BYTES if with_depth else 0.0)
    return FRAME_BYTES + per_pixel * pixels + per_cell * gh * gw


def working_bytes(frames: int, height: int, width: int, *, with_depth: bool = False, comfy: bool = False) -> int:
    """What a run on `frames` frames of height x width adds to a process with its libraries loaded."""
    return int(WINDOW_BYTES + PIXEL_BYTES * height * width
               + frames * per_frame_bytes(height, width, with_depth=with_depth, comfy=comfy))


def estimate_peak_bytes(frames: int, height: int, width: int, *, with_depth: bool = False,
                        comfy: bool = False) -> int:
    """Peak resident memory of `insertanywhere masks` on `frames` frames of height x width."""
    return BASE_BYTES + working_bytes(frames, height, width, with_depth=with_depth, comfy=comfy)


def size_text(nbytes: float) -> str:
    """Bytes as '7.3 GiB' or '420 MiB'."""
    return f"{nbytes / GIB:.1f} GiB" if nbytes >= GIB else f"{nbytes / 2**20:.0f} MiB"


def available_bytes() -> Optional[int]:
    """Memory the system can give without swapping (MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Budget:
    """What one mask-pipeline run may add to the process's memory, and how to estimate its need."""

    limit: Optional[int]          # bytes; None = no limit (memory unknown)
    source: str                   # where the limit came from, for the message
    with_depth: bool = False
    comfy: bool = False
    flag_hint: str = "--memory-budget GIB"

    def need(self, frames: int, height: int, width: int) -> int:
        """Bytes above BASE_BYTES for `frames` frames of height x width."""
        return working_bytes(frames, height, width, with_depth=self.with_depth, comfy=self.comfy)

    def frames_that_fit(self, height: int, width: int) -> Optional[int]:
        if self.limit is None:
            return None
        room = self.limit - WINDOW_BYTES - PIXEL_BYTES * height * width
        return max(0, int(room // per_frame_bytes(height, width, with_depth=self.with_depth, comfy=self.comfy)))

    def fits(self, frames: int, height: int, width: int) -> bool:
        return self.limit is None or self.need(frames, height, width) <= self.limit


def budget(gib: Optional[float] = None, *, with_depth: bool = False, comfy: bool = False,
           flag_hint: str = "--memory-budget GIB") -> Budget:
    """The budget for one run: `gib` if > 0, else INSERTANYWHERE_MEMORY_BUDGET_GB if set (> 0), else
    MEMORY_FRACTION of the memory available now."""
    source = f"{flag_hint.split()[0]} {gib:.3g}" if gib else ""
    if not gib:
        text = os.environ.get(ENV_BUDGET, "").strip()
        if text:
            try:
                gib = float(text)
            except ValueError:
                raise InsertAnywhereError(f"{ENV_BUDGET}={text!r} is not a number; set it to GiB, e.g. 8.") from None
            source = f"{ENV_BUDGET}={text}"
    if gib is not None and (not math.isfinite(gib) or gib < 0):
        raise InsertAnywhereError(f"The memory budget must be a number of GiB >= 0 (0 = automatic), got {gib}.")
    if gib:
        return Budget(int(gib * GIB), source, with_depth, comfy, flag_hint)
    free = available_bytes()
    if free is None:
        return Budget(None, "unknown available memory", with_depth, comfy, flag_hint)
    return Budget(int(free * MEMORY_FRACTION), f"{MEMORY_FRACTION:.0%} of the {size_text(free)} available",
                  with_depth, comfy, flag_hint)


def snap_size(height: int, width: int, multiple: int = 16, max_side: int = 0) -> tuple[int, int]:
    """Target (H, W): scaled so the longer side is at most `max_side` (0 = keep), then
    rounded down to multiples of `multiple` (at least one multiple)."""
    scale = 1.0
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
    h = max(multiple, int(round(height * scale)) // multiple * multiple)
    w = max(multiple, int(round(width * scale)) // multiple * multiple)
    return h, w


FIT_MODES = ("crop", "resize", "none")
FRAME_COUNT_MODES = ("any", "4k+1")


@dataclass(frozen=True)
class Selection:
    """The decoding knobs as the user set them (names as in the node; the CLI's flags match), checked.

    start: int >= 0. First source frame kept.
    stride: int >= 1. Keep every stride-th frame from start (the fps is divided by it).
    frame_cap: int >= 1 or None. Keep at most this many frames; None: no cap.
    max_side: int >= 0, pixels. Longer side after fitting; 0 keeps the source size.
    fit: "crop" | "resize" | "none". Fit the frames to multiples of `multiple` by a centre crop or a
      resize, or keep them as decoded (then max_side and multiple do not apply).
    multiple: int >= 1, pixels. H and W are snapped to multiples of it (16 for Wan).
    frame_count: "any" | "4k+1". 4k+1 trims to 1, 5, 9, ... frames as Wan needs.
    """

    start: int = 0
    stride: int = 1
    frame_cap: Optional[int] = None
    max_side: int = 0
    fit: str = "crop"
    multiple: int = 16
    frame_count: str = "any"

    def __post_init__(self):
        _at_least("start", self.start, 0)
        _at_least("stride", self.stride, 1)
        if self.frame_cap is not None:
            _at_least("frame_cap", self.frame_cap, 1, " or None (no cap)")
        _at_least("max_side", self.max_side, 0, " (0 keeps the source size)")
        _at_least("multiple", self.multiple, 1)
        for name, modes in (("fit", FIT_MODES), ("frame_count", FRAME_COUNT_MODES)):
            if getattr(self, name) not in modes:
                raise InsertAnywhereError(f"Unknown {name} {getattr(self, name)!r} in the frame selection; use one "
                                          f"of {', '.join(modes)}.")

    def frames(self, container_frames: int) -> Optional[int]:
        """Frames this selection keeps from a video whose index lists `container_frames` (0 = unknown):
        the cap when the count is unknown (or None without a cap)."""
        if container_frames > 0:
            left = max(0, -(-(container_frames - self.start) // self.stride))
            return min(left, self.frame_cap) if self.frame_cap else left
        return self.frame_cap


def _at_least(name: str, value, low: int, extra: str = "") -> None:
    if not is_int(value) or value < low:
        raise InsertAnywhereError(f"Invalid frame selection {name}={value!r}: use {name} >= {low}{extra}, "
                                  "a whole number.")


SOURCE_FRAMES = Selection(fit="none")  # every frame at the source size (read_video's and run_masks' default)


def refuse(plan: Budget, sel: Selection, frames: int, size: tuple[int, int], source_size: tuple[int, int],
           container_frames: int, what: str) -> InsertAnywhereError:
    """The error for a selection that does not fit, naming each knob's value that would."""
    h, w = size
    need = plan.need(frames, h, w)
    options = []
    fit_frames = plan.frames_that_fit(h, w) or 0
    if fit_frames >= 2:
        options.append(f"frame_cap {fit_frames} (--frame-cap; now {sel.frame_cap or 'none'})")
    if container_frames > 0:
        for stride in range(sel.stride + 1, 101):
            if plan.fits(Selection(sel.start, stride, sel.frame_cap).frames(container_frames) or 0, h, w):
                options.append(f"stride {stride} (--stride; now {sel.stride})")
                break
        if fit_frames >= 2:
            start = container_frames - fit_frames * sel.stride
            if start > sel.start:
                options.append(f"start {start} (--start; now {sel.start})")
    if sel.fit != "none":
        for side in range((max(source_size) if not sel.max_side else sel.max_side) - 16, 15, -16):
            sh, sw = snap_size(*source_size, sel.multiple, side)
            if plan.fits(frames, sh, sw):
                options.append(f"max_side {side} (--max-side; now {sel.max_side or 'source size'}, "
                               f"giving {sw}x{sh})")
                break
    else:
        options.append("fit crop or resize with a smaller max_side")
    limit = plan.limit or 0
    return InsertAnywhereError(
        f"{what}: {frames} frames of {w}x{h} would need about {size_text(need)} for the mask pipeline "
        f"(decode, reconstruction, masks), more than the {size_text(limit)} it may use "
        f"({plan.source}). Any one of these fits: " + "; ".join(options) +
        f". Or allow more memory with {plan.flag_hint}" +
        ("." if ENV_BUDGET in plan.flag_hint else f" (or {ENV_BUDGET})."))


def check_frames(frames: int, height: int, width: int, plan: Budget, what: str) -> None:
    """Refuse decoded frames that the rest of the mask pipeline could not hold (e.g. frames from
    another loader), naming the loader knobs that would fit."""
    if not plan.fits(frames, height, width):
        raise refuse(plan, Selection(frame_cap=frames, max_side=max(height, width)), frames, (height, width),
                     (height, width), 0, what)
