"""Dense optical flow between consecutive frames (OpenCV DIS) with a forward-backward check.

Conventions (the same as `SceneRecord.flow_*`; the Propagate stage relies on them):
  s = flow_stride; the flow grid is H' = ceil(H / s) by W' = ceil(W / s).
  Grid cell (i, j) is the full-res pixel centre (u, v) = (j * s, i * s)  (`geometry.pixel_grid`).
  flow_fwd[t, i, j] = (du, dv) in FULL-RES pixels: pixel (j*s, i*s) of frame t is seen at
                      (j*s + du, i*s + dv) in frame t + 1.
  flow_bwd[t, i, j] = the same from frame t + 1 back to frame t (cell (i, j) is a pixel of frame t + 1).
  flow_valid[t, i, j] = flow_fwd[t, i, j] lands inside frame t + 1 and the backward flow there
                      brings it back to within `fb_tolerance` of where it started.
To follow a point across frames, sample flow_fwd[t] bilinearly at (u / s, v / s) and step on,
stopping where flow_valid (also sampled there) is false.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional, Union

import cv2
import numpy as np

from ...errors import InsertAnywhereError
from ...progress import Progress, report
from .spill import SpilledArray

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


FlowArray = Union[np.ndarray, SpilledArray]


@dataclass
class FlowField:
    """The optical flow both ways between consecutive frames of a clip of F frames, on a grid of
    H' x W' cells of `stride` full-res pixels (conventions in the module docstring).

    fwd: float32 [F-1, H', W', 2], frame t -> t + 1, in full-res pixels (an array or, while the
      reconstruction runs, a spill.SpilledArray on disk); bwd: the same, frame t + 1 -> t.
    valid: bool [F-1, H', W'], fwd passes the forward-backward check (cells of frame t);
    valid_bwd: bool [F-1, H', W'], the same for bwd (cells of frame t + 1). stride: int >= 1.
    The shapes are checked on construction.
    """

    fwd: FlowArray
    bwd: FlowArray
    valid: np.ndarray
    valid_bwd: np.ndarray
    stride: int

    def __post_init__(self):
        shape = tuple(self.fwd.shape)
        if len(shape) != 4 or shape[-1] != 2:
            raise InsertAnywhereError(f"FlowField.fwd must be [F-1, H', W', 2], got shape {shape}.")
        if tuple(self.bwd.shape) != shape:
            raise InsertAnywhereError(f"FlowField.bwd has shape {tuple(self.bwd.shape)}; it must match "
                                      f"fwd's {shape}.")
        for name in ("valid", "valid_bwd"):
            mask = getattr(self, name)
            if tuple(mask.shape) != shape[:3] or mask.dtype != bool:
                raise InsertAnywhereError(f"FlowField.{name} must be bool {shape[:3]} (fwd's grid), got "
                                          f"{mask.dtype} {tuple(mask.shape)}.")
        if isinstance(self.stride, bool) or not isinstance(self.stride, (int, np.integer)) or self.stride < 1:
            raise InsertAnywhereError(f"FlowField.stride must be an integer >= 1, got {self.stride!r}.")

    def close(self) -> None:
        """Release the flow's temporary files (when spilled); the field is unusable after."""
        for array in (self.fwd, self.bwd):
            if isinstance(array, SpilledArray):
                array.close()


def choose_stride(height: int, width: int, max_side: int = 512) -> int:
    """Smallest power of two s with max(H, W) / s <= max_side."""
    s = 1
    while max(height, width) > max_side * s:
        s *= 2
    return s


def to_gray(frames: np.ndarray) -> np.ndarray:
    """uint8 [F, H, W, 3] RGB -> uint8 [F, H, W] grey."""
    return np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames])


def downsample_gray(gray: np.ndarray, stride: int) -> np.ndarray:
    """uint8 [F, H, W] -> uint8 [F, H', W'], blurred and sampled exactly at pixels (j*s, i*s)."""
    if stride == 1:
        return gray
    return np.stack([np.ascontiguousarray(cv2.GaussianBlur(g, (0, 0), 0.5 * stride)[::stride, ::stride])
                     for g in gray])


def sample_bilinear(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear sample of field [H', W', ...] at grid coordinates x, y [...] (clamped to the border)."""
    h, w = field.shape[:2]
    x = np.clip(x, 0, w - 1.001)
    y = np.clip(y, 0, h - 1.001)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = x - x0
    fy = y - y0
    if field.ndim == 3:
        fx = fx[..., None]
        fy = fy[..., None]
    top = field[y0, x0] * (1 - fx) + field[y0, x0 + 1] * fx
    bottom = field[y0 + 1, x0] * (1 - fx) + field[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def fb_consistent(fwd: np.ndarray, bwd: np.ndarray, stride: int, height: int, width: int,
                  fb_tolerance: float = 1.0, fb_relative: float = 0.05) -> np.ndarray:
    """bool [H', W']: forward flow lands inside the frame and the backward flow returns it.

    fwd, bwd: float32 [H', W', 2] in full-res pixels. A cell is consistent when
    |fwd + bwd(target)| <= fb_tolerance * stride + fb_relative * |fwd|.
    """
    h, w = fwd.shape[:2]
    gx = np.arange(w, dtype=np.float32)[None, :] + fwd[..., 0] * (1.0 / stride)
    gy = np.arange(h, dtype=np.float32)[:, None] + fwd[..., 1] * (1.0 / stride)
    inside = (gx >= 0) & (gx <= (width - 1) / stride) & (gy >= 0) & (gy <= (height - 1) / stride)
    back = cv2.remap(bwd, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    loop = cv2.add(fwd, back)
    err = cv2.magnitude(loop[..., 0], loop[..., 1])
    limit = fb_tolerance * stride + fb_relative * cv2.magnitude(fwd[..., 0], fwd[..., 1])
    return inside & (err <= limit)


def compute_flow(gray: np.ndarray, stride: int, preset: str = "medium",
                 progress: Optional[Progress] = None, progress_offset: int = 0,
                 progress_total: Optional[int] = None, workers: int = 2, spill: bool = False
                 ) -> FlowField:
    """DIS flow for every consecutive pair, on `workers` threads (OpenCV releases the GIL).

    gray: uint8 [F, H, W] full-res grey frames. Returns the FlowField on the grid of `stride`.
    spill: its fwd and bwd are spill.SpilledArray (on disk, read a window at a time) instead.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; use one of {sorted(PRESETS)}")
    num, height, width = gray.shape
    small = downsample_gray(gray, stride)
    h, w = small.shape[1:]
    shape = (num - 1, h, w, 2)
    fwd = SpilledArray(shape, np.float32) if spill else np.empty(shape, np.float32)
    bwd = SpilledArray(shape, np.float32) if spill else np.empty(shape, np.float32)
    valid = np.empty((num - 1, h, w), bool)
    valid_bwd = np.empty_like(valid)
    total = progress_total if progress_total is not None else num - 1
    local = threading.local()

    def pair(t: int) -> int:
        if not hasattr(local, "dis"):
            local.dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        forward = local.dis.calc(small[t], small[t + 1], None) * stride
        backward = local.dis.calc(small[t + 1], small[t], None) * stride
        valid[t] = fb_consistent(forward, backward, stride, height, width)
        valid_bwd[t] = fb_consistent(backward, forward, stride, height, width)
        fwd[t], bwd[t] = forward, backward
        return t

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, _ in enumerate(pool.map(pair, range(num - 1))):
            report(progress, progress_offset + done + 1, total)
    return FlowField(fwd, bwd, valid, valid_bwd, stride)


def follow(flows: np.ndarray, valids: np.ndarray, stride: int, u: np.ndarray, v: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Carry full-res pixels (u, v) [N] through a chain of flows.

    flows: [k, H', W', 2] applied in order (e.g. flow_fwd[t:t+k], or flow_bwd[t-k:t][::-1]);
    valids: [k, H', W'] their validity, read at the nearest cell. Returns (u', v', ok) [N];
    ok is False once any step is invalid.
    """
    h, w = flows.shape[1:3]
    u = np.asarray(u, np.float32).copy()
    v = np.asarray(v, np.float32).copy()
    ok = np.ones(u.shape, bool)
    for flow, valid in zip(flows, valids):
        gx = u / stride
        gy = v / stride
        ix = np.clip(np.rint(gx).astype(np.int64), 0, w - 1)
        iy = np.clip(np.rint(gy).astype(np.int64), 0, h - 1)
        ok &= valid[iy, ix] & (gx > -0.5) & (gx < w - 0.5) & (gy > -0.5) & (gy < h - 0.5)
        step = sample_bilinear(flow, gx, gy)
        u += step[..., 0]
        v += step[..., 1]
    return u, v, ok
