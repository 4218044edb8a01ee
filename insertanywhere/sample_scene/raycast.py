"""A small numpy ray caster: the first hit of camera rays in the analytic world (room faces and boxes)."""

from __future__ import annotations

import numpy as np

from .world import _NEAR, _World


def _argmin3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise (min, index of the min) of three arrays; faster than reducing an [N, 3] axis."""
    m = np.minimum(np.minimum(a, b), c)
    return m, np.where(a == m, 0, np.where(b == m, 1, 2))


def _argmax3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = np.maximum(np.maximum(a, b), c)
    return m, np.where(a == m, 0, np.where(b == m, 1, 2))


def _nonzero_dirs(d: np.ndarray) -> np.ndarray:
    return np.where(np.abs(d) < 1e-12, 1e-12, d)


_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)


def _screen_box(pose: np.ndarray, half: np.ndarray, camera_from_world: np.ndarray, K: np.ndarray):
    """Pixel bounds (umin, umax, vmin, vmax) of a box's projection, or None if it reaches behind the camera."""
    corners = (_CORNERS * half) @ pose[:3, :3].T + pose[:3, 3]
    pc = corners @ camera_from_world[:3, :3].T + camera_from_world[:3, 3]
    if (pc[:, 2] <= _NEAR).any():
        return None
    u = K[0, 0] * pc[:, 0] / pc[:, 2] + K[0, 2]
    v = K[1, 1] * pc[:, 1] / pc[:, 2] + K[1, 2]
    return u.min() - 1.0, u.max() + 1.0, v.min() - 1.0, v.max() + 1.0


def _raycast(world: _World, frame: int, camera_from_world: np.ndarray, K: np.ndarray, u: np.ndarray, v: np.ndarray):
    """First hit of the camera rays through pixels (u, v) [N] in `frame`.

    Returns prim [N] int16, depth [N] float64 (camera z of the hit), local [N, 3] (hit point in the
    prim's frame), normal_local [N, 3] (unit, in the prim's frame), and the rays: origin [3],
    dirs [N, 3] (world, scaled to camera z = 1).
    """
    origin, dirs = _camera_rays(camera_from_world, K, u, v)
    n = dirs.shape[0]
    d = [_nonzero_dirs(np.ascontiguousarray(dirs[:, i])) for i in range(3)]
    # Room: the ray leaves the interior box through its nearest exit face.
    o = origin - world.room_center
    h = world.room_half
    best, axis = _argmin3(*[np.where(d[i] > 0, h[i] - o[i], -h[i] - o[i]) / d[i] for i in range(3)])
    positive = np.choose(axis, d) > 0
    prim = world.room_face_ids[axis * 2 + positive].astype(np.int16)
    local = origin + best[:, None] * dirs
    normal = np.zeros((n, 3))
    normal[np.arange(n), axis] = np.where(positive, -1.0, 1.0)

    for pid, half in world.boxes:
        pose = world.poses[pid, frame]
        bounds = _screen_box(pose, half, camera_from_world, K)
        if bounds is None:
            idx = np.arange(n)
        else:
            idx = np.flatnonzero((u >= bounds[0]) & (u <= bounds[1]) & (v >= bounds[2]) & (v <= bounds[3]))
            if len(idx) == 0:
                continue
        R, c = pose[:3, :3], pose[:3, 3]
        o_l = R.T @ (origin - c)
        d_l = _nonzero_dirs(_rotate(dirs[idx], R.T))
        t1 = (-half - o_l) / d_l
        t2 = (half - o_l) / d_l
        lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
        t_near, ax = _argmax3(lo[:, 0], lo[:, 1], lo[:, 2])
        t_far = np.minimum(np.minimum(hi[:, 0], hi[:, 1]), hi[:, 2])
        hit = (t_near <= t_far) & (t_near > _NEAR) & (t_near < best[idx])
        if not hit.any():
            continue
        sub = np.flatnonzero(hit)
        idx, t_near, ax, d_l = idx[sub], t_near[sub], ax[sub], d_l[sub]
        best[idx] = t_near
        prim[idx] = pid
        local[idx] = o_l + t_near[:, None] * d_l
        nl = np.zeros((len(idx), 3))
        nl[np.arange(len(idx)), ax] = -np.sign(d_l[np.arange(len(idx)), ax])
        normal[idx] = nl
    return prim, best, local, normal, origin, dirs


def _per_prim(poses: np.ndarray, prim: np.ndarray, points: np.ndarray, rotate_only: bool = False) -> np.ndarray:
    """Apply each point's primitive pose: poses [P, 4, 4], prim [N], points [N, 3] -> [N, 3]."""
    out = np.empty_like(points, dtype=np.float64)
    for pid in np.unique(prim):
        sel = prim == pid
        R = poses[pid, :3, :3]
        out[sel] = _rotate(points[sel], R) if rotate_only else _rotate(points[sel], R) + poses[pid, :3, 3]
    return out


def _rotate(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    """points [N, 3] @ M.T for a small M [K, 3], element-wise (no BLAS threads for thin products)."""
    return points[:, 0:1] * M[:, 0] + points[:, 1:2] * M[:, 1] + points[:, 2:3] * M[:, 2]


def _camera_rays(camera_from_world: np.ndarray, K: np.ndarray, u: np.ndarray, v: np.ndarray):
    """Camera centre [3] and world ray directions [N, 3] (camera z = 1) through pixels (u, v)."""
    R, t = camera_from_world[:3, :3], camera_from_world[:3, 3]
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    return -R.T @ t, _rotate(d_cam, R.T)
