"""Depth from camera motion: triangulation of flow correspondences once the cameras are known.

Used twice: to correct a monocular depth map's smooth distortions (its shape between near and far
is only roughly right) with multi-view evidence, and to build depth from scratch when no depth is
given at all.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..geometry import invert_rigid
from .correspond import match, sample_cells
from .flow import FlowField
from .threads import map_threads


def triangulate(K: np.ndarray, pose_a: np.ndarray, pose_b: np.ndarray, pa: np.ndarray, pb: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Depth in camera a [N] of the points seen at pixels pa (camera a) and pb (camera b), and the
    angle between the two viewing rays [N] in degrees (small = unreliable). pose_a, pose_b:
    camera_from_world [4, 4] of the two cameras.

    Midpoint method: the closest points of the two rays; depth is NaN when either lies behind.
    """
    Kinv = np.linalg.inv(K)
    b_from_a = pose_b @ invert_rigid(pose_a)
    R, t = b_from_a[:3, :3], b_from_a[:3, 3]
    ra = np.c_[pa, np.ones(len(pa))] @ Kinv.T            # rays in camera a, z = 1
    rb = np.c_[pb, np.ones(len(pb))] @ Kinv.T @ R          # camera b rays in camera a axes (R^T rb)
    cb = -R.T @ t                                          # camera b centre in camera a
    # minimise |za ra - (cb + zb rb)|^2 over za, zb
    aa = (ra * ra).sum(1)
    bb = (rb * rb).sum(1)
    ab = (ra * rb).sum(1)
    ac = ra @ cb
    bc = rb @ cb
    den = aa * bb - ab * ab
    ok = den > 1e-12
    den = np.where(ok, den, 1.0)
    za = (ac * bb - ab * bc) / den
    zb = (ab * ac - aa * bc) / den
    cos = ab / np.sqrt(aa * bb)
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    depth = np.where(ok & (za > 0) & (zb > 0), za, np.nan)
    return depth, angle


def sparse_depth(t: int, K: np.ndarray, poses: np.ndarray, gray: np.ndarray, mask: np.ndarray, flow: FlowField,
                 gaps=(4, 12), points: int = 300, min_angle_deg: float = 0.5, rng=None, others=None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangulated depth at up to `points` cells of frame t where mask [H', W'] is True.

    Each cell is matched to frames t +- g (or the frames `others`; flow chain + Lucas-Kanade) and
    triangulated with the known cameras; the estimates are averaged with weights angle^2 (depth
    error ~ 1 / baseline).
    Returns rows, cols [n] and depth [n] of the cells with a parallax of at least min_angle_deg.
    """
    rng = rng if rng is not None else np.random.default_rng(t)
    num = len(poses)
    rows, cols = sample_cells(mask, points, rng)
    total = np.zeros(len(rows))
    weight = np.zeros(len(rows))
    if others is None:
        others = [o for gap in gaps for o in (t + gap, t - gap) if 0 <= o < num]
        if not others:  # a short video: the farthest frames there are
            others = [o for o in {0, num - 1} if o != t]
    for other in others:
        p, q, ok = match(gray, flow, t, other, rows, cols)
        depth, angle = triangulate(K, poses[t], poses[other], p[ok], q[ok])
        good = np.isfinite(depth) & (angle >= min_angle_deg)
        idx = np.flatnonzero(ok)[good]
        w = angle[good] ** 2
        total[idx] += w * np.log(depth[good])
        weight[idx] += w
    keep = weight > 0
    return rows[keep], cols[keep], np.exp(total[keep] / weight[keep])


def _differences(ny: int, nx: int) -> np.ndarray:
    """[E, ny * nx]: one row per pair of neighbouring grid nodes, +1 and -1 at the two."""
    idx = np.arange(ny * nx).reshape(ny, nx)
    pairs = np.concatenate([np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1),
                            np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], 1)])
    D = np.zeros((len(pairs), ny * nx))
    D[np.arange(len(pairs)), pairs[:, 0]] = 1.0
    D[np.arange(len(pairs)), pairs[:, 1]] = -1.0
    return D


def smooth_correction(rows: np.ndarray, cols: np.ndarray, log_ratio: np.ndarray, shape: tuple[int, int],
                      nodes: tuple[int, int] = (4, 6), smoothness: float = 1.0, iterations: int = 4
                      ) -> np.ndarray:
    """A smooth field [H', W'] through sparse samples log_ratio [n] at cells (rows, cols): bilinear
    on a coarse grid of nodes (ny, nx), regularised towards neighbouring nodes, robust (IRLS)."""
    h, w = shape
    ny, nx = nodes
    gy = rows / max(h - 1, 1) * (ny - 1)
    gx = cols / max(w - 1, 1) * (nx - 1)
    y0 = np.clip(np.floor(gy).astype(int), 0, ny - 2)
    x0 = np.clip(np.floor(gx).astype(int), 0, nx - 2)
    fy, fx = gy - y0, gx - x0
    n = ny * nx
    A = np.zeros((len(rows), n))
    for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        np.add.at(A, (np.arange(len(rows)), (y0 + dy) * nx + x0 + dx), wgt)
    L = _differences(ny, nx) * np.sqrt(smoothness * max(len(rows), 1) / n)
    weights = np.ones(len(rows))
    for _ in range(iterations):
        Aw = A * weights[:, None]
        c = np.linalg.solve(Aw.T @ A + L.T @ L + 1e-9 * np.eye(n), Aw.T @ log_ratio)
        res = np.abs(A @ c - log_ratio)
        sigma = 1.4826 * np.median(res) + 1e-6
        weights = 1.0 / (1.0 + (res / (2 * sigma)) ** 2)
    node_map = c.reshape(ny, nx).astype(np.float32)
    mx = np.linspace(0, nx - 1, w, dtype=np.float32)[None, :].repeat(h, 0)
    my = np.linspace(0, ny - 1, h, dtype=np.float32)[:, None].repeat(w, 1)
    return cv2.remap(node_map, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def correct_depth(depth: np.ndarray, K: np.ndarray, poses: np.ndarray, gray: np.ndarray, usable: np.ndarray,
                  flow: FlowField, points_first: int = 800, points: int = 150, node_rows: int = 8,
                  min_points: int = 40, seed: int = 0) -> tuple[np.ndarray, int]:
    """Multiply each frame's depth [F, H, W] by a smooth field fitted to triangulated depths.

    usable: bool [F, H', W'] cells worth triangulating (textured, static). Frame 0, where objects are
    placed, gets more points. Frames with fewer than min_points triangulated cells stay as they
    are. Returns the corrected depth (float32: the input itself when it is float32) and how many
    frames were corrected.
    """
    num, height, width = depth.shape
    h, w = usable.shape[1:]
    nodes = (node_rows, max(2, int(round(node_rows * w / h))))

    def field(t: int):
        rng = np.random.default_rng([seed, t])
        rows, cols, z = sparse_depth(t, K, poses, gray, usable[t], flow,
                                     points=points_first if t == 0 else points, rng=rng)
        if len(z) < min_points:
            return None
        current = depth[t, rows * flow.stride, cols * flow.stride]
        return smooth_correction(rows, cols, np.log(z / current), (h, w), nodes)

    out = np.asarray(depth, np.float32)  # float32 depth is corrected in place (read fully first)
    corrected = 0
    for t, grid in enumerate(map_threads(field, range(num))):
        if grid is not None:
            out[t] *= cv2.resize(np.exp(grid), (width, height), interpolation=cv2.INTER_LINEAR)
            corrected += 1
    return out, corrected


def densify(rows: np.ndarray, cols: np.ndarray, depth: np.ndarray, guide: np.ndarray,
            sigma_frac: float = 0.04) -> np.ndarray:
    """Dense depth [H', W'] from sparse samples at cells (rows, cols): normalised convolution of log
    depth (Gaussian, sigma a fraction of the width), then an edge-aware guided filter on the frame."""
    from .motion import guided_filter

    h, w = guide.shape
    values = np.zeros((h, w), np.float32)
    weights = np.zeros((h, w), np.float32)
    np.add.at(values, (rows, cols), np.log(depth).astype(np.float32))
    np.add.at(weights, (rows, cols), 1.0)
    sigma = max(1.0, sigma_frac * max(h, w))
    num = cv2.GaussianBlur(values, (0, 0), sigma)
    den = cv2.GaussianBlur(weights, (0, 0), sigma)
    fallback = float(np.median(np.log(depth)))
    log_depth = np.where(den > 1e-6, num / np.maximum(den, 1e-12), fallback).astype(np.float32)
    g = guide.astype(np.float32) / 255.0
    smooth = guided_filter(g, log_depth, max(2, int(sigma / 2)), 1e-3)
    return np.exp(smooth)


def _parallax_px(p: np.ndarray, q: np.ndarray) -> float:
    """Median distance [px] of q from the best homography of p: motion a pure rotation cannot make."""
    if len(p) < 8:
        return 0.0
    H, _ = cv2.findHomography(p, q, cv2.USAC_MAGSAC, 1.0)
    if H is None:
        return 0.0
    mapped = cv2.perspectiveTransform(p.reshape(-1, 1, 2), H).reshape(-1, 2)
    return float(np.median(np.linalg.norm(mapped - q, axis=1)))


def initial_pair(K: np.ndarray, gray: np.ndarray, textured: np.ndarray, flow: FlowField,
                 min_parallax_px: float = 1.0, points: int = 600, rng=None):
    """The first frame k with enough parallax from frame 0, its relative pose and frame 0's points.

    Returns (k, pose_k [4, 4] with |t| = 1, rows, cols, depth [n] of triangulated frame-0 cells), or
    None when no frame shows parallax (a rotating or zooming camera).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    num = len(gray)
    rows, cols = sample_cells(flow.valid[0] & textured[0], points, rng)
    for k in list(range(2, num, 2)) + ([num - 1] if num > 1 else []):
        p, q, ok = match(gray, flow, 0, k, rows, cols)
        if ok.sum() < 30:
            break
        if _parallax_px(p[ok], q[ok]) < min_parallax_px:
            continue
        E, inl = cv2.findEssentialMat(p[ok], q[ok], K, cv2.USAC_MAGSAC, 0.999, 1.0)
        if E is None or E.shape != (3, 3):
            continue
        _, R, t, inl = cv2.recoverPose(E, p[ok], q[ok], K, mask=inl)
        pose = np.eye(4)
        pose[:3, :3] = R
        pose[:3, 3] = t.ravel() / max(np.linalg.norm(t), 1e-12)
        sel = np.flatnonzero(ok)[inl.ravel() > 0]
        depth, angle = triangulate(K, np.eye(4), pose, p[sel], q[sel])
        good = np.isfinite(depth) & (angle > 0.3)
        if good.sum() >= 30:
            return k, pose, rows[sel[good]], cols[sel[good]], depth[good]
    return None


NO_PARALLAX = ("The camera does not move sideways enough (it only rotates or zooms, or barely moves), so "
               "depth cannot be triangulated from the video. Connect a depth estimate (e.g. a depth "
               "node's output, or a depth .npz) to the depth input and run again.")


def motion_poses(K: np.ndarray, gray: np.ndarray, textured: np.ndarray, flow: FlowField, points: int = 400,
                 rekey_every: int = 8, seed: int = 0, warnings: list | None = None) -> np.ndarray:
    """camera_from_world [F, 4, 4] from the video alone (frame 0 = identity, first baseline = 1).

    Two-view start (essential matrix between frame 0 and the first frame with parallax), then PnP
    of each frame on points triangulated at the latest key frame; a new key frame is triangulated
    against earlier frames every `rekey_every` frames or when too few points survive.
    Raises InsertAnywhereError (NO_PARALLAX) when the video shows no parallax.
    """
    from ...errors import InsertAnywhereError
    from ..geometry import transform, unproject
    from .pose import pnp

    rng = np.random.default_rng(seed)
    num = len(gray)
    stride = flow.stride
    start = initial_pair(K, gray, textured, flow, rng=rng)
    if start is None:
        raise InsertAnywhereError(NO_PARALLAX)
    _, _, rows, cols, depth = start
    poses = np.tile(np.eye(4), (num, 1, 1))
    key = 0
    world = unproject(cols * float(stride), rows * float(stride), depth, K)
    for t in range(1, num):
        p, q, ok = match(gray, flow, key, t, rows, cols)
        pose, inliers = pnp(world[ok], q[ok], K, 1.0)
        if pose is None or inliers.sum() < 12:
            pose = poses[t - 1]
            if warnings is not None:
                warnings.append(f"frame {t}: camera pose not found from motion, kept frame {t - 1}'s")
        poses[t] = pose
        if t < num - 1 and (t - key >= rekey_every or inliers.sum() < max(30, 0.3 * len(rows))):
            past = [o for o in (t - 2 * rekey_every, t - rekey_every, t - 3) if 0 <= o < t]
            new_rows, new_cols, new_depth = sparse_depth(
                t, K, poses, gray, textured[t] & flow.valid[t], flow, points=points, rng=rng,
                others=sorted(set(past)))
            if len(new_depth) >= 30:
                key, rows, cols = t, new_rows, new_cols
                cam = unproject(cols * float(stride), rows * float(stride), new_depth, K)
                world = transform(invert_rigid(poses[t]), cam)
    return poses


def depth_from_motion(K: np.ndarray, poses: np.ndarray, gray: np.ndarray, gray_grid: np.ndarray,
                      usable: np.ndarray, flow: FlowField, height: int, width: int, points: int = 500,
                      seed: int = 0) -> np.ndarray:
    """Dense depth float32 [F, H, W] for known cameras: triangulated cells, densified per frame.
    A frame without triangulated cells takes its neighbour's map."""
    num = len(poses)

    def dense(t: int):
        rows, cols, z = sparse_depth(t, K, poses, gray, usable[t], flow, points=points,
                                     rng=np.random.default_rng([seed, t]))
        if len(z) < 10:
            return None
        return cv2.resize(densify(rows, cols, z, gray_grid[t]), (width, height), interpolation=cv2.INTER_LINEAR)

    out = np.zeros((num, height, width), np.float32)
    have = np.zeros(num, bool)
    for t, grid in enumerate(map_threads(dense, range(num))):
        if grid is not None:
            out[t] = grid
            have[t] = True
    if not have.any():
        from ...errors import InsertAnywhereError
        raise InsertAnywhereError(NO_PARALLAX)
    known = np.flatnonzero(have)
    for t in np.flatnonzero(~have):
        out[t] = out[known[np.argmin(np.abs(known - t))]]
    return out
