"""First pass: camera poses chained frame to frame by PnP on depth-lifted correspondences, each new
frame's depth model fitted to the running reconstruction.

A large moving thing can out-vote the static scene in a single PnP. So the chain keeps a map of
suspect (moving) cells: PnP outliers mark their surroundings in the next frame, inliers clear
theirs, and the map is carried along by the backward flow; PnP points are drawn outside it.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import invert_rigid, transform, unproject
from .correspond import match, sample_cells
from .depth import depth_from_params, robust_fit
from .flow import FlowField, sample_bilinear
from .pose import pnp


def _splat(shape: tuple[int, int], q: np.ndarray, stride: int, radius: int) -> np.ndarray:
    """bool [H', W']: disks of `radius` cells around full-res points q [N, 2]."""
    img = np.zeros(shape, np.uint8)
    iy = np.clip(np.rint(q[:, 1] / stride).astype(np.int64), 0, shape[0] - 1)
    ix = np.clip(np.rint(q[:, 0] / stride).astype(np.int64), 0, shape[1] - 1)
    img[iy, ix] = 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(img, kernel) > 0


def _carry(mask: np.ndarray, flow_bwd: np.ndarray, stride: int) -> np.ndarray:
    """Move a bool mask [H', W'] of frame t to frame t + 1 with flow_bwd[t] [H', W', 2]."""
    h, w = mask.shape
    mx = np.arange(w, dtype=np.float32)[None, :] + flow_bwd[..., 0] / stride
    my = np.arange(h, dtype=np.float32)[:, None] + flow_bwd[..., 1] / stride
    return cv2.remap(mask.astype(np.uint8), mx, my, cv2.INTER_NEAREST, borderValue=0) > 0


def chain_poses(kind: str, values: np.ndarray, params: np.ndarray, K: np.ndarray, gray: np.ndarray,
                textured: np.ndarray, flow: FlowField, points: int = 400, threshold_px: float = 1.0,
                seed: int = 0, warnings: list | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """camera_from_world [F, 4, 4] (frame 0 = identity), depth params [F, 2], suspect bool [F, H', W'].

    values: depth-model inputs on the flow grid [F, H', W'] (float32 or float64: computed in float64);
    params[0] must be set (the others are
    fitted here). For each t: lift textured, unsuspected cells of frame t with its depth, PnP them
    at their matches in frame t + 1, then fit frame t + 1's params to the PnP inliers' depths there.
    """
    rng = np.random.default_rng(seed)
    stride = flow.stride
    num, h, w = values.shape
    radius = max(2, int(round(0.025 * max(h, w))))
    poses = np.tile(np.eye(4), (num, 1, 1))
    params = params.copy()
    suspect = np.zeros(values.shape, bool)
    for t in range(num - 1):
        usable = flow.valid[t] & textured[t]
        clean = usable & ~suspect[t]
        rows, cols = sample_cells(clean if clean.sum() >= 0.2 * usable.sum() else usable, points, rng)
        p, q, ok = match(gray, flow, t, t + 1, rows, cols)
        z = depth_from_params(kind, values[t, rows, cols].astype(np.float64), params[t])
        world = transform(invert_rigid(poses[t]), unproject(p[:, 0], p[:, 1], z, K))[ok]
        q = q[ok]
        pose, inliers = pnp(world, q, K, threshold_px)
        if pose is None or inliers.sum() < 12:
            pose, inliers = poses[t], np.ones(len(q), bool)
            if warnings is not None:
                warnings.append(f"frame {t + 1}: camera pose not found, kept frame {t}'s")
        poses[t + 1] = pose
        cam = transform(pose, world[inliers])
        ahead = cam[:, 2] > 1e-9
        val = sample_bilinear(values[t + 1], q[inliers, 0] / stride, q[inliers, 1] / stride)
        if ahead.sum() >= 2:
            params[t + 1] = robust_fit(kind, val[ahead], cam[ahead, 2])
        else:  # nothing of frame t matched in front of the camera (a mover filled the view)
            params[t + 1] = params[t]
            if warnings is not None:
                warnings.append(f"frame {t + 1}: no depth match, kept frame {t}'s depth scale")
        carried = _carry(suspect[t], flow.bwd[t], stride) & ~_splat((h, w), q[inliers], stride, radius // 2)
        suspect[t + 1] = carried | _splat((h, w), q[~inliers], stride, radius)
    return poses, params, suspect
