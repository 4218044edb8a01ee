"""Masks of independently moving things: observed flow that the camera motion does not explain.

For a grid cell of frame t the ego-motion flow to frame t' is what the cell would do if it were
static: lift it with frame t's depth, move it with the relative camera pose, project. A cell is
evidence of motion when the observed (forward-backward consistent) flow differs from it by more
than
    tolerance_px + relative * |part of the ego flow caused by camera translation|
(the relative term absorbs depth errors, whose effect grows with parallax), and evidence of rest
otherwise. Frame t compares itself with t + 1 (fast movers) and t + span via chained flow (slow movers have
moved far enough to show); near the end it looks back instead.
Flow is only trusted on textured cells; the evidence is then spread over each object with an
edge-aware (guided) filter steered by the frame, so untextured parts of a moving thing follow
their textured parts.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from ..geometry import invert_rigid
from .flow import FlowField
from .threads import stack_frames


GUIDE_RADIUS_FRAC = 0.03  # guided-filter radius, fraction of the grid's long side: spreads evidence over an object
GUIDE_EPS = 4e-3  # guided-filter regulariser (grey 0..1 squared): edges weaker than ~0.06 do not stop the spread
MIN_EVIDENCE = 0.05  # smoothed motion evidence (0..1) below which a cell is not called moving: too little seen
MIN_AREA_FRAC = 5e-4  # fraction of the grid: smaller moving specks are flow noise, dropped


def ego_flow(depth: np.ndarray, K: np.ndarray, rel: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Ego-motion flow [H', W', 2] (full-res pixels) of grid cells with depth [H', W'] under the
    relative pose rel [4, 4] (source camera -> target camera), and the length [H', W'] of its
    translation part. Cells that end up behind the camera get a huge flow."""
    h, w = depth.shape
    Kf = K.astype(np.float64)
    H_inf = Kf @ rel[:3, :3] @ np.linalg.inv(Kf)
    e = Kf @ rel[:3, 3]
    u = (np.arange(w, dtype=np.float32) * stride)[None, :]
    v = (np.arange(h, dtype=np.float32) * stride)[:, None]
    rot = [H_inf[i, 0] * u + H_inf[i, 1] * v + H_inf[i, 2] for i in range(3)]
    zi = 1.0 / depth.astype(np.float32)
    den = rot[2] + e[2] * zi
    ok = den > 1e-6
    den = np.where(ok, den, 1.0)
    fu = (rot[0] + e[0] * zi) / den
    fv = (rot[1] + e[1] * zi) / den
    rden = np.where(np.abs(rot[2]) > 1e-6, rot[2], 1e-6)
    flow = np.stack([np.where(ok, fu - u, 1e6), np.where(ok, fv - v, 1e6)], -1)
    parallax = np.where(ok, np.hypot(fu - rot[0] / rden, fv - rot[1] / rden), 1e6)
    return flow, parallax


def chain_dense(flows: np.ndarray, valids: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Compose consecutive dense flows [k, H', W', 2] (with validity [k, H', W']) into one
    [H', W', 2] flow from the first frame to the last, and its validity."""
    h, w = flows.shape[1:3]
    total = flows[0].copy()
    ok = valids[0].copy()
    gx = np.arange(w, dtype=np.float32)[None, :]
    gy = np.arange(h, dtype=np.float32)[:, None]
    for flow, valid in zip(flows[1:], valids[1:]):
        mx = gx + total[..., 0] / stride
        my = gy + total[..., 1] / stride
        total += cv2.remap(flow, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ok &= cv2.remap(valid.astype(np.uint8), mx, my, cv2.INTER_NEAREST, borderValue=0) > 0
    return total, ok


def _views(t: int, num: int, span: int) -> list[int]:
    """Frames that frame t is compared with: its next frame (fast movers: little occlusion) and the
    frame `span` ahead (slow movers: enough motion), looking back instead near the end."""
    views = []
    for step in sorted({1, max(1, min(span, num - 1))}):
        for other in (t + step, t - step):
            if 0 <= other < num:
                views.append(other)
                break
    return views


def _flow_between(t: int, other: int, flow: FlowField):
    """Observed flow [H', W', 2] from frame t to frame other, and its validity (chained if needed)."""
    if other > t:
        if other - t == 1:
            return flow.fwd[t], flow.valid[t]
        return chain_dense(flow.fwd[t:other], flow.valid[t:other], flow.stride)
    if t - other == 1:
        return flow.bwd[other], flow.valid_bwd[other]
    return chain_dense(flow.bwd[other:t][::-1], flow.valid_bwd[other:t][::-1], flow.stride)


def structure_tensor(gray: np.ndarray, window: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed structure tensor (Ixx, Ixy, Iyy) [H', W'] of a grey grid image (0..255)."""
    g = cv2.GaussianBlur(gray.astype(np.float32) / 255.0, (0, 0), 1.0)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    size = (window, window)
    return cv2.blur(gx * gx, size), cv2.blur(gx * gy, size), cv2.blur(gy * gy, size)


def frame_evidence(t: int, depth: np.ndarray, K: np.ndarray, poses: np.ndarray, flow: FlowField, gray: np.ndarray,
                   tolerance_px: float, relative: float, span: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Evidence of motion and of rest of frame t's cells, float32 [H', W'] each, in 0..1 (0 = no evidence).

    depth: float32 [H', W'] frame t's depth on the flow grid; gray: [H', W'] frame t's grey grid.
    Only the part of the flow residual that the image can show is used: its component across the
    local edges (r^T S r / trace S, with S the structure tensor), so flow sliding along stripes or
    over flat areas is no evidence either way. Evidence is weighted by edge strength. The tolerance
    of each comparison is widened to the spread of its residuals (median + 4 MAD over strong
    cells: most of a frame is static).
    """
    ixx, ixy, iyy = structure_tensor(gray)
    trace = ixx + iyy
    weight = trace / (trace + np.median(trace) + 1e-12)
    seen = np.zeros(depth.shape, bool)
    exceeded = np.zeros(depth.shape, bool)
    for other in _views(t, len(poses), span):
        observed, valid = _flow_between(t, other, flow)
        rel = poses[other] @ invert_rigid(poses[t])
        ego, parallax = ego_flow(depth, K, rel, flow.stride)
        rx = observed[..., 0] - ego[..., 0]
        ry = observed[..., 1] - ego[..., 1]
        visible = np.sqrt((ixx * rx * rx + 2 * ixy * rx * ry + iyy * ry * ry) / (trace + 1e-12))
        ratio = visible / (tolerance_px + relative * parallax)
        strong = valid & (weight > 0.5)
        limit = 1.0
        if strong.sum() > 100:
            sample = ratio[strong]
            med = np.median(sample)
            limit = max(1.0, med + 4 * 1.4826 * np.median(np.abs(sample - med)))
        seen |= valid
        exceeded |= valid & (ratio > limit)
    return (exceeded * weight).astype(np.float32), ((seen & ~exceeded) * weight).astype(np.float32)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of src [h, w] steered by guide [h, w] in 0..1 (He et al.)."""
    size = (2 * radius + 1, 2 * radius + 1)
    box = lambda x: cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mean_i = box(guide)
    mean_p = box(src)
    var_i = box(guide * guide) - mean_i * mean_i
    cov = box(guide * src) - mean_i * mean_p
    a = cov / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def moving_masks(depth_of: Callable[[int], np.ndarray], K: np.ndarray, poses: np.ndarray, flow: FlowField,
                 gray_grid: np.ndarray, tolerance_px: float, relative: float, height: int, width: int
                 ) -> np.ndarray:
    """Moving masks bool [F, H, W], one frame at a time: its evidence (frame_evidence, with its
    grid depth float32 [H', W'] from depth_of(t)) is reduced to its mask at once, so no evidence or
    grid depth is held for the whole clip.

    Each frame: guided-filter both kinds of evidence, call a cell moving where motion outweighs
    rest clearly (twice) and there is enough evidence around, drop specks, upsample.
    """
    h, w = gray_grid.shape[1:]
    radius = max(2, int(round(GUIDE_RADIUS_FRAC * max(h, w))))

    def frame(t: int) -> np.ndarray:
        moving, resting = frame_evidence(t, depth_of(t), K, poses, flow, gray_grid[t], tolerance_px, relative)
        guide = gray_grid[t].astype(np.float32) / 255.0
        m = np.maximum(guided_filter(guide, moving, radius, GUIDE_EPS), 0)
        r = np.maximum(guided_filter(guide, resting, radius, GUIDE_EPS), 0)
        mask = ((m > 2 * r) & (m > MIN_EVIDENCE)).astype(np.uint8)
        mask = _drop_small(mask, max(4, int(MIN_AREA_FRAC * mask.size)))
        return cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR) > 0

    return stack_frames(frame, len(poses), bool)


def _drop_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels].astype(np.uint8)
