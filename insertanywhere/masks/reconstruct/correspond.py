"""Sparse, precise correspondences for the geometry (pose chain, bundle adjustment).

Dense DIS flow shrinks displacements by a percent or two (its coarse-to-fine patch search), which
chained over a video becomes a drift of a degree or more. So the geometry uses textured points
only: the chained dense flow gives each point's initial position in the other frame, and one
Lucas-Kanade solve at full resolution, checked by solving back, makes it exact.
"""

from __future__ import annotations

import cv2
import numpy as np

from .flow import FlowField, follow

LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01)


def texture_strength(gray_grid: np.ndarray) -> np.ndarray:
    """float32 [F, H', W']: smallest eigenvalue of the local structure tensor (high = a trackable
    corner, low = flat or a single edge, where flow is unreliable)."""
    return np.stack([cv2.cornerMinEigenVal(cv2.GaussianBlur(g, (0, 0), 1.0), 5, 3) for g in gray_grid])


def textured(strength: np.ndarray, keep_fraction: float = 0.5) -> np.ndarray:
    """bool [F, H', W']: each frame's `keep_fraction` of cells with the strongest texture."""
    levels = np.quantile(strength[:, ::2, ::2].reshape(len(strength), -1), 1 - keep_fraction, axis=1)
    return strength >= np.maximum(levels, 1e-6)[:, None, None]


def sample_cells(mask: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to `count` random (rows, cols) [n] of cells where mask [H', W'] is True."""
    cells = np.flatnonzero(mask.ravel())
    if len(cells) > count:
        cells = rng.choice(cells, size=count, replace=False)
    return np.divmod(cells, mask.shape[1])


def refine(gray_src: np.ndarray, gray_dst: np.ndarray, p: np.ndarray, q0: np.ndarray, window: int = 11,
           levels: int = 0, max_fb_px: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Lucas-Kanade from full-res points p [N, 2] of gray_src, starting at q0 [N, 2] in gray_dst.

    Returns refined q [N, 2] and ok [N]: converged, inside, and solving back from q lands within
    max_fb_px of p.
    """
    if len(p) == 0:
        return q0, np.zeros(0, bool)
    p32 = np.ascontiguousarray(p, np.float32)
    size = (window, window)
    flags = cv2.OPTFLOW_USE_INITIAL_FLOW
    q, st, _ = cv2.calcOpticalFlowPyrLK(gray_src, gray_dst, p32, np.ascontiguousarray(q0, np.float32).copy(),
                                        winSize=size, maxLevel=levels, flags=flags, criteria=LK_CRITERIA)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(gray_dst, gray_src, q, p32.copy(), winSize=size, maxLevel=levels,
                                            flags=flags, criteria=LK_CRITERIA)
    h, w = gray_src.shape
    ok = (st.ravel() == 1) & (st2.ravel() == 1) & (np.linalg.norm(back - p32, axis=1) <= max_fb_px)
    ok &= (q[:, 0] >= 0) & (q[:, 0] <= w - 1) & (q[:, 1] >= 0) & (q[:, 1] <= h - 1)
    return q.astype(np.float64), ok


def match(gray: np.ndarray, flow: FlowField, src: int, dst: int, rows: np.ndarray, cols: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correspondences from grid cells (rows, cols) of frame src to frame dst (flow chained forward,
    or backward when dst < src).

    gray: uint8 [F, H, W] full-res grey frames. Returns p, q [N, 2] full-res pixels and ok [N].
    """
    stride = flow.stride
    p = np.stack([cols * float(stride), rows * float(stride)], -1)
    if dst > src:
        flows, valids = flow.fwd[src:dst], flow.valid[src:dst]
    else:
        flows, valids = flow.bwd[dst:src][::-1], flow.valid_bwd[dst:src][::-1]
    qu, qv, ok = follow(flows, valids, stride, p[:, 0], p[:, 1])
    sel = np.flatnonzero(ok)
    q = np.stack([qu, qv], -1).astype(np.float64)
    levels = 0 if abs(dst - src) <= 2 else 1
    q[sel], good = refine(gray[src], gray[dst], p[sel], q[sel], levels=levels)
    ok[sel] = good
    return p, q, ok


def step_points(scene, t: int, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Carry full-res pixels uv [N, 2] of frame t to frame t + 1 precisely.

    scene: a SceneRecord with flow. The dense flow (which shrinks displacements by a percent or
    two) gives the start, Lucas-Kanade on the full-res frames the answer. Returns uv' [N, 2] and
    ok [N] (flow valid there and the Lucas-Kanade solve checked by solving back).
    """
    uv = np.asarray(uv, np.float64).reshape(-1, 2)
    s = scene.flow_stride
    u, v, ok = follow(scene.flow_fwd[t:t + 1].astype(np.float32), scene.flow_valid[t:t + 1], s, uv[:, 0], uv[:, 1])
    start = np.stack([u, v], -1).astype(np.float64)
    gray = [cv2.cvtColor(scene.frames[k], cv2.COLOR_RGB2GRAY) for k in (t, t + 1)]
    out = start.copy()
    sel = np.flatnonzero(ok)
    out[sel], good = refine(gray[0], gray[1], uv[sel], start[sel])
    ok[sel] = good
    return out, ok
