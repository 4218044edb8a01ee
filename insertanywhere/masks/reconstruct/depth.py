"""Per-frame depth models: how a frame's input map turns into camera depth in the shared scale.

Two kinds, each with a few parameters per frame (params float64 [F, 2]):
  "inverse_affine"  input is disparity d (relative inverse depth):  1 / z = a * d + b     params (a, b)
  "scale"           input is depth D (metric, or triangulated):      z = s * D             params (s, unused)
Bundle adjustment moves these parameters so that all frames agree on one scene in one scale.
"""

from __future__ import annotations

import numpy as np

INVERSE_AFFINE = "inverse_affine"
SCALE = "scale"
MAX_DEPTH_RATIO = 200.0  # depth is capped at this multiple of the frame's median depth


def depth_from_params(kind: str, values: np.ndarray, params: np.ndarray) -> np.ndarray:
    """values [..., n] of one frame with params [2] -> depth z [..., n] (> 0, capped far away),
    in the values' float type."""
    dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64
    a, b = (np.asarray(p, dtype) for p in params[:2])
    if kind == SCALE:
        return values * a
    inv = a * values + b
    floor = np.median(inv.ravel()[::7]) / MAX_DEPTH_RATIO if inv.size > 16 else 1e-6
    return 1.0 / np.maximum(inv, np.asarray(max(floor, 1e-9), dtype))


def depth_jacobian(kind: str, values: np.ndarray, z: np.ndarray) -> np.ndarray:
    """dz / dparams [..., 2] at depth z (for "inverse_affine": dz/da = -z^2 d, dz/db = -z^2)."""
    if kind == SCALE:
        return np.stack([values, np.zeros_like(values)], axis=-1)
    z2 = -z * z
    return np.stack([z2 * values, z2], axis=-1)


def robust_fit(kind: str, values: np.ndarray, target_depth: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Params [2] mapping `values` [N] to `target_depth` [N] (z > 0), robust to outliers.

    "inverse_affine" fits a * d + b to 1 / z (weighted so that relative depth errors count alike);
    "scale" fits s by the median ratio. Falls back to a pure scale when d has no spread.
    """
    target_depth = np.asarray(target_depth, np.float64)
    values = np.asarray(values, np.float64)
    if kind == SCALE:
        return np.array([np.median(target_depth / np.maximum(values, 1e-12)), 0.0])
    inv = 1.0 / target_depth
    weights = np.ones_like(inv)
    params = np.array([0.0, np.median(inv)])
    if np.ptp(values) < 1e-6:
        return params
    for _ in range(iterations + 3):
        # relative error in 1/z: divide rows by 1/z
        scale = weights / inv
        A = np.stack([values, np.ones_like(values)], axis=1) * scale[:, None]
        params = np.linalg.lstsq(A, inv * scale, rcond=None)[0]
        rel = np.abs((params[0] * values + params[1]) / inv - 1.0)
        sigma = 1.4826 * np.median(rel) + 1e-6
        weights = 1.0 / (1.0 + (rel / (2.0 * sigma)) ** 2)  # Cauchy: gross outliers fade out
    return params

