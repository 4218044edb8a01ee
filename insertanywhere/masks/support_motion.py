"""Does the support move? A model choice over a sliding window of frames.

Data: the support's residual flow, i.e. the optical flow of its visible pixels minus the flow a
point fixed in the world would have under the estimated cameras and depth (pixels, per step).
Two models for the last WINDOW_STEPS steps:
  static  the support is fixed in the world: its residual flow is noise,
  moving  the support moves rigidly: its residual flow has a drift (2 more parameters, the
          support's image-plane displacement over the window).
The moving model wins when its gain in log-likelihood, |S|^2 / (2 sigma^2) for the window's summed
residual S, beats the BIC penalty (p / 2) ln n (p = 2 parameters, n = support observations).
sigma is not set by hand: it is the spread of the same window sum on tiles of static scene
(not moving, not near a mover, the support's size) all over the frame, so camera error, depth
error (monocular depth under a forward walk) and hand shake, which every static tile shares,
raise the noise scale instead of reading as support motion. Visible support pixels are those the
z-test against the frame's depth and the moving masks leave (people passing in front drop out).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .geometry import invert_rigid, project, transform, unproject
from .scene import SceneRecord

WINDOW_STEPS = 8           # frames; evidence window: a slow slide adds up, hand shake (>= 2 Hz) averages out
MOTION_PARAMS = 2          # count; the moving model's extra parameters (image-plane drift over the window)
BIC_WEIGHT = 1.0           # 1; scales the BIC penalty (1 = BIC, 2 / ln n = AIC)
RAYLEIGH_MEDIAN = 1.1774   # 1; median of |x| for a 2-D unit normal x: turns the tiles' median norm into sigma
FLOW_NOISE_FLOOR_PX = 0.05  # px per step; DIS flow's sub-pixel accuracy: sigma never falls below it
MIN_TILES = 6              # count; fewer static tiles than this cannot estimate sigma: no decision
MIN_TILE_POINTS = 6        # count; residuals a tile (or the support) needs in a step to count


def sample_bilinear(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grid [h, w, ...] sampled at float cell coordinates (x, y) [N] (clamped to the border)."""
    h, w = grid.shape[:2]
    x = np.clip(x, 0, w - 1)
    y = np.clip(y, 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2) if w > 1 else np.zeros(len(x), np.int64)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2) if h > 1 else np.zeros(len(y), np.int64)
    fx = (x - x0)[:, None] if grid.ndim == 3 else x - x0
    fy = (y - y0)[:, None] if grid.ndim == 3 else y - y0
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    top = grid[y0, x0].astype(np.float64) * (1 - fx) + grid[y0, x1].astype(np.float64) * fx
    bottom = grid[y1, x0].astype(np.float64) * (1 - fx) + grid[y1, x1].astype(np.float64) * fx
    return top * (1 - fy) + bottom * fy


def flow_step(scene: SceneRecord, t: int, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move pixels uv [N, 2] of frame t by the flow t -> t+1: (uv' [N, 2], valid [N])."""
    s = scene.flow_stride
    cells = uv / s
    flow = sample_bilinear(scene.flow_fwd[t], cells[:, 0], cells[:, 1])
    if scene.flow_valid is None:
        valid = np.ones(len(uv), bool)
    else:
        grid = scene.flow_valid[t]
        cx = np.clip(np.round(cells[:, 0]).astype(np.int64), 0, grid.shape[1] - 1)
        cy = np.clip(np.round(cells[:, 1]).astype(np.int64), 0, grid.shape[0] - 1)
        valid = grid[cy, cx].astype(bool)
    return uv + flow, valid


def inside(uv: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    return np.isfinite(uv).all(1) & (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)


def residual_flow(scene: SceneRecord, t: int, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residual flow [N, 2] (px) of frame-t pixels uv [N, 2] over the step t -> t+1, and which are
    usable [N]: flow valid, depth valid, inside the image at both ends."""
    K = scene.K.astype(np.float64)
    z = sample_bilinear(scene.depth[t], uv[:, 0], uv[:, 1])
    ok = np.isfinite(z) & (z > 0)
    cam = unproject(uv[:, 0], uv[:, 1], np.where(ok, z, 1.0), K)
    step = scene.world_to_camera[t + 1].astype(np.float64) @ invert_rigid(scene.world_to_camera[t].astype(np.float64))
    static_uv, static_z = project(transform(step, cam), K)
    flowed, flow_ok = flow_step(scene, t, uv)
    ok &= flow_ok & (static_z > 0) & inside(flowed, scene.size)
    ok &= inside(np.nan_to_num(static_uv, nan=-1.0), scene.size)
    return np.nan_to_num(flowed - static_uv), ok


def static_tiles(scene: SceneRecord, t: int, centre: np.ndarray, tile_px: float) -> dict[tuple[int, int], np.ndarray]:
    """Median residual flow [2] of each tile (tile_px square) of static scene in step t -> t+1,
    sampled on the flow grid; tiles with a mover, or within a tile of the support's centre [2], are left out."""
    s = scene.flow_stride
    h, w = scene.size
    tile = max(int(round(tile_px)), s)
    stride = max(s, tile // 6)  # ~36 samples per tile
    gy, gx = np.mgrid[stride // 2:h:stride, stride // 2:w:stride]
    uv = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float64)
    res, ok = residual_flow(scene, t, uv)
    key = (uv // tile).astype(np.int64)
    moving_tiles = {tuple(k) for k in key[scene.moving[t][gy.ravel(), gx.ravel()]]}
    near = np.abs(uv - centre).max(1) < 1.5 * tile
    out = {}
    for k in {tuple(k) for k in key[ok & ~near]} - moving_tiles:
        sel = ok & ~near & (key[:, 0] == k[0]) & (key[:, 1] == k[1])
        if sel.sum() >= MIN_TILE_POINTS:
            out[k] = np.median(res[sel], axis=0)
    return out


@dataclass
class Step:
    """One step's evidence: the support's median residual flow [2] and point count (None when too
    few of its pixels are visible), and the static tiles' median residual flows."""

    support: Optional[np.ndarray]
    count: int
    tiles: dict


@dataclass
class Choice:
    """The window's verdict: gain = |S|^2 / (2 sigma^2) and penalty = BIC_WEIGHT (p / 2) ln n;
    the support moves when the gain beats the penalty. onset: how many of the window's last steps
    show the drift (the suffix whose constant drift explains the most, a change point)."""

    gain: float
    penalty: float
    sigma: float
    onset: int

    @property
    def moving(self) -> bool:
        return self.gain > self.penalty


class SupportWindow:
    """The last WINDOW_STEPS steps' evidence and the model choice over them."""

    def __init__(self, steps: Optional[int] = None):
        self.steps: deque = deque(maxlen=max(1, int(round(steps or WINDOW_STEPS))))

    def add(self, step: Step) -> Optional[Choice]:
        self.steps.append(step)
        return self.choice()

    def choice(self) -> Optional[Choice]:
        seen = [s for s in self.steps if s.support is not None]
        if not seen:
            return None
        common = set.intersection(*(set(s.tiles) for s in seen))
        if len(common) < MIN_TILES:
            return None
        tile_sums = np.array([np.sum([s.tiles[k] for s in seen], axis=0) for k in common])
        floor = FLOW_NOISE_FLOOR_PX * np.sqrt(len(seen))
        sigma = max(float(np.median(np.linalg.norm(tile_sums, axis=1))) / RAYLEIGH_MEDIAN, floor)
        total = np.sum([s.support for s in seen], axis=0)
        n = sum(s.count for s in seen)
        gain = float(total @ total) / (2 * sigma ** 2)
        penalty = BIC_WEIGHT * 0.5 * MOTION_PARAMS * np.log(max(n, 2))
        return Choice(gain, float(penalty), sigma, _onset([s.support for s in seen]) + len(self.steps) - len(seen))


def _onset(residuals: list) -> int:
    """Steps at the end of the list [2]-vectors drifting together: the suffix length k maximising
    |sum of the last k|^2 / k (the change point of a constant drift in white noise)."""
    cumulative = np.cumsum(np.asarray(residuals)[::-1], axis=0)
    score = (cumulative ** 2).sum(1) / np.arange(1, len(residuals) + 1)
    return int(np.argmax(score)) + 1
