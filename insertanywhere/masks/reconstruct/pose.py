"""Camera pose from 3D-2D correspondences (PnP, USAC MAGSAC) and small SO(3) helpers."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np


def so3_exp(omega: np.ndarray) -> np.ndarray:
    """Rotation vectors [..., 3] -> rotation matrices [..., 3, 3] (Rodrigues)."""
    omega = np.asarray(omega, np.float64)
    theta = np.linalg.norm(omega, axis=-1)[..., None, None]
    W = skew(omega)
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0, np.sin(safe) / safe)
    b = np.where(small, 0.5, (1 - np.cos(safe)) / (safe * safe))
    return np.eye(3) + a * W + b * (W @ W)


def skew(x: np.ndarray) -> np.ndarray:
    """[..., 3] -> cross-product matrices [..., 3, 3]."""
    x = np.asarray(x, np.float64)
    zero = np.zeros_like(x[..., 0])
    return np.stack([
        np.stack([zero, -x[..., 2], x[..., 1]], -1),
        np.stack([x[..., 2], zero, -x[..., 0]], -1),
        np.stack([-x[..., 1], x[..., 0], zero], -1),
    ], -2)


def pnp(points: np.ndarray, pixels: np.ndarray, K: np.ndarray, threshold_px: float = 1.5
        ) -> tuple[Optional[np.ndarray], np.ndarray]:
    """camera_from_world [4, 4] from world points [N, 3] seen at pixels [N, 2], and the inlier mask [N].

    USAC MAGSAC (plain RANSAC is far less accurate at sub-pixel noise), then a Levenberg-Marquardt
    polish on the inliers. Returns (None, all False) when fewer than 6 points or no consensus.
    """
    inliers = np.zeros(len(points), bool)
    if len(points) < 6:
        return None, inliers
    obj = np.ascontiguousarray(points, np.float64)
    img = np.ascontiguousarray(pixels, np.float64)
    ok, rvec, tvec, idx = cv2.solvePnPRansac(
        obj, img, K, None, iterationsCount=500, reprojectionError=threshold_px, confidence=0.999,
        flags=cv2.USAC_MAGSAC)
    if not ok or idx is None or len(idx) < 6:
        return None, inliers
    inliers[idx.ravel()] = True
    rvec, tvec = cv2.solvePnPRefineLM(obj[inliers], img[inliers], K, None, rvec, tvec)
    pose = np.eye(4)
    pose[:3, :3] = cv2.Rodrigues(rvec)[0]
    pose[:3, 3] = tvec.ravel()
    return pose, inliers
