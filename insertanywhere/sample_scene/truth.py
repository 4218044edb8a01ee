"""Ground truth derived from a rendered sample scene: exact optical flow, and a simulated monocular depth."""

from __future__ import annotations

import numpy as np

from .raycast import _per_prim, _raycast, _rotate
from .world import _NEAR


def _sample_nearest(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """img [H, W] sampled at (pixel + flow), nearest, False outside."""
    H, W = img.shape
    v, u = np.mgrid[0:H, 0:W]
    uu = np.rint(u + flow[..., 0]).astype(np.int64)
    vv = np.rint(v + flow[..., 1]).astype(np.int64)
    inside = (uu >= 0) & (uu < W) & (vv >= 0) & (vv < H)
    out = np.zeros((H, W), bool)
    out[inside] = img[vv[inside], uu[inside]]
    return out


def _exact_flow(scene, ta: int, tb: int):
    """Flow [H, W, 2] from frame ta to tb of a SampleScene, and whether each point is seen (not occluded,
    in frame) in tb."""
    world, K = scene.world, scene.K_at(tb)
    H, W = scene.depth.shape[1:]
    prim = scene.hit_prim[ta].reshape(-1).astype(np.int64)
    local = scene.hit_local[ta].reshape(-1, 3).astype(np.float64)
    pts = _per_prim(world.poses[:, tb], prim, local)
    cam = scene.camera_from_world[tb]
    pc = _rotate(pts, cam[:3, :3]) + cam[:3, 3]
    z = pc[:, 2]
    zs = np.where(z > _NEAR, z, 1.0)
    u2 = K[0, 0] * pc[:, 0] / zs + K[0, 2]
    v2 = K[1, 1] * pc[:, 1] / zs + K[1, 2]
    v, u = np.mgrid[0:H, 0:W]
    flow = np.stack([u2 - u.reshape(-1), v2 - v.reshape(-1)], -1)
    seen = (z > _NEAR) & (u2 >= 0) & (u2 <= W - 1) & (v2 >= 0) & (v2 <= H - 1)
    idx = np.nonzero(seen)[0]
    hit_prim, hit_z = _raycast(world, tb, cam, K, u2[idx], v2[idx])[:2]
    same = (hit_prim == prim[idx]) & (np.abs(hit_z - z[idx]) <= 1e-4 * z[idx] + 1e-6)
    seen[idx] = same
    return flow.reshape(H, W, 2).astype(np.float32), seen.reshape(H, W)


def _mono_disparity(depth: np.ndarray, seed: int) -> np.ndarray:
    """Depth-network-like disparity: per-frame affine drift, smooth warp, blur, noise; 0..1 per frame."""
    from scipy.ndimage import gaussian_filter, zoom

    rng = np.random.default_rng([seed, 7])
    F, H, W = depth.shape
    disp = 1.0 / np.maximum(depth.astype(np.float64), 1e-3)
    scale = np.exp(np.cumsum(rng.normal(0, 0.03, F)))
    shift = np.cumsum(rng.normal(0, 0.02, F))
    grids = rng.normal(0, 0.06, (2, 4, 6))
    out = np.empty((F, H, W), np.float16)
    for t in range(F):
        a = t / max(F - 1, 1)
        coarse = (1 - a) * grids[0] + a * grids[1]
        warp = np.exp(zoom(coarse, (H / 4, W / 6), order=3, mode="nearest")[:H, :W])
        d = disp[t] * scale[t] * warp + shift[t] * np.median(disp[t])
        d = gaussian_filter(d, 1.2) + rng.normal(0, 0.006, (H, W)) * np.median(disp[t])
        lo, hi = d.min(), d.max()
        out[t] = ((d - lo) / max(hi - lo, 1e-9)).astype(np.float16)
    return out
