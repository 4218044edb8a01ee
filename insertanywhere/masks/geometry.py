"""Camera and rigid-motion math shared by every mask stage (numpy, OpenCV conventions).

Cameras: x right, y down, z forward; pixel centres at integer coordinates.
Poses are 4x4 matrices; `camera_from_world[t] @ [X, 1]` gives frame t's camera point.
"""

from __future__ import annotations

import numpy as np


def pixel_grid(height: int, width: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) float32 grids [H', W'] of pixel centres sampled every `stride` pixels."""
    v, u = np.mgrid[0:height:stride, 0:width:stride].astype(np.float32)
    return u, v


def unproject(u: np.ndarray, v: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels (u, v) with camera depth z -> camera points [..., 3]."""
    x = (u - K[0, 2]) / K[0, 0] * z
    y = (v - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, z], axis=-1)


def project(points: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera points [..., 3] -> (uv [..., 2], z [...]). Points with z <= 0 get uv = nan."""
    z = points[..., 2]
    safe = np.where(z > 1e-9, z, np.nan)
    u = K[0, 0] * points[..., 0] / safe + K[0, 2]
    v = K[1, 1] * points[..., 1] / safe + K[1, 2]
    return np.stack([u, v], axis=-1), z


def transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 (affine) matrix to points [..., 3]."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def invert_rigid(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 (rotation + translation), batched over leading dims."""
    R = matrix[..., :3, :3]
    t = matrix[..., :3, 3]
    out = np.zeros_like(matrix)
    Rt = np.swapaxes(R, -1, -2)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, t)
    out[..., 3, 3] = 1.0
    return out


def make_pose(R: np.ndarray, t: np.ndarray, scale: float = 1.0) -> np.ndarray:
    out = np.eye(4, dtype=np.float64)
    out[:3, :3] = scale * np.asarray(R, dtype=np.float64)
    out[:3, 3] = t
    return out


def rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def kabsch(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None,
           with_scale: bool = False) -> np.ndarray:
    """Best 4x4 similarity (or rigid) T with dst ~ T(src), least squares (Umeyama).

    src, dst: [N, 3], N >= 3 non-collinear points; weights: [N] >= 0.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / max(w.sum(), 1e-12)
    mu_s = w @ src
    mu_d = w @ dst
    s0 = src - mu_s
    d0 = dst - mu_d
    cov = (d0 * w[:, None]).T @ s0
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1.0
    R = U @ D @ Vt
    scale = 1.0
    if with_scale:
        var_s = w @ (s0 ** 2).sum(axis=1)
        scale = float(np.trace(np.diag(S) @ D) / max(var_s, 1e-12))
    t = mu_d - scale * R @ mu_s
    return make_pose(R, t, scale)


def rotation_angle_deg(R: np.ndarray) -> float:
    """Angle of a 3x3 rotation, in degrees (atan2 form: accurate near 0 and 180, unlike arccos)."""
    R = np.asarray(R, dtype=np.float64)
    c = (np.trace(R) - 1.0) / 2.0
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return float(np.degrees(np.arctan2(np.linalg.norm(axis) / 2.0, c)))
