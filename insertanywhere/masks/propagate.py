"""Propagate: carry the placed object through the video with the motion of its support.

The support is the `top_k` scene points nearest (in 3D) to the anchor in frame 0. They are
stored in the object's own coordinates, so wherever the object is, their predicted image
positions are known. Each step t-1 -> t:
  1. predict the support points in frame t-1 from the current pose; drop those outside the
     image or hidden (scene depth nearer than predicted),
  2. move them by the optical flow t-1 -> t (dropping fb-inconsistent flow), lift both ends
     to world points with depth and camera poses,
  3. fit the support's world motion with a robust (least-median) Kabsch,
  4. two hypotheses are kept: the static frame-0 pose, and a pose that follows the support
     whenever its flow clearly differs from a static point's (fitted in the support's plane
     to the flowed pixels and refined against the support's frame-0 look, since DIS flow
     underestimates small movers). Frame t's look of the support (shading-free texture NCC
     against frame 0) picks one; the reconstruction's `moving` flags decide when both look
     alike and for plain supports. A static support thus keeps the frame-0 pose exactly.
Poses are world_from_object [F, 4, 4] similarities; the object's scale never changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..progress import Progress, report
from .geometry import invert_rigid, kabsch, project, transform, unproject
from .scene import ObjectTrack, SceneRecord

HIDDEN_TOLERANCE = 0.05   # a support point is hidden when the scene is nearer by this fraction
OCCLUDER_GAP = 0.25       # ... and near an occluder's edge when something this much nearer is close by
MIN_POINTS = 6            # fewer tracked support points than this: keep the pose (and say so)
MOVING_FRACTION = 0.5     # share of support points flagged moving that counts as 'flagged'
PHOTO_MARGIN = 0.03       # texture NCC difference that decides between the static and the following pose
MIN_SEPARATION_PX = 1.0   # ... once they are this far apart in the image (closer, the look is noise)
PATCH_POINTS = 600        # dense support samples for the photometric check
MIN_TEXTURE = 0.01        # texture (log-grey) std below which the support is too plain to check
LMEDS_TRIALS = 64
BLUR_SIGMA = 1.0          # px, smooths the grey frames for the photometric alignment
SHADE_SIGMA = 4.0         # px, shading scale removed from the grey frames (shadows, light changes)
LOOK_MARGIN = 16          # px around the patch where texture is computed (room for alignment steps)
ALIGN_ITERATIONS = 8
ALIGN_SLACK_PX = 2.0      # the photometric alignment may move the flowed pose this far (or half the motion)
MAX_TILT_DEG = 2.0        # support motions tilting less than this per frame are taken as planar
MIN_FLOW_PX = 0.25        # a moving support's median flow must differ from a static point's by this much
HUBER_K = 1.0             # robust cut-off of the standardised grey residual
MIN_PHOTO_POINTS = 20     # photometric evidence needs this many patch points in view
MIN_PHOTO_SHARE = 0.25    # ... and this share of the patch


def support_points(depth0: np.ndarray, K: np.ndarray, anchor_camera: np.ndarray, top_k: int,
                   height_px: float, object_height: float) -> np.ndarray:
    """The top_k frame-0 scene points nearest to the anchor point, camera-0 coordinates [k, 3].

    Candidates lie on a pixel grid whose spacing makes k points cover a disc about the
    object's footprint (radius ~ half its pixel height), so the fit sees the support, not a
    few pixels of it. Points farther than two object heights are never used.
    """
    height, width = depth0.shape
    stride = int(max(1, round(0.5 * height_px * np.sqrt(np.pi / top_k))))
    uv, _ = project(anchor_camera[None], K)
    u0, v0 = uv[0]
    reach = int(np.ceil(4 * 0.5 * height_px + 4 * stride))
    xs = np.arange(int(u0) % stride, width, stride)
    ys = np.arange(int(v0) % stride, height, stride)
    xs = xs[np.abs(xs - u0) <= reach]
    ys = ys[np.abs(ys - v0) <= reach]
    gx, gy = np.meshgrid(xs, ys)
    z = depth0[gy, gx].astype(np.float64)
    ok = np.isfinite(z) & (z > 0)
    pts = unproject(gx[ok].astype(np.float64), gy[ok].astype(np.float64), z[ok], K)
    dist = np.linalg.norm(pts - anchor_camera, axis=1)
    near = dist <= 2 * object_height
    pts, dist = pts[near], dist[near]
    return pts[np.argsort(dist)[:top_k]]


@dataclass
class _Patch:
    """Dense support samples for the photometric check and alignment.

    points [m, 3] (camera 0 when made, then the object's frame), their frame-0 texture values
    reference [m] (see _texture; None when the support is too plain to compare), and the
    patch plane's unit normal [3] in the same frame.
    """

    points: np.ndarray
    reference: Optional[np.ndarray]
    normal: np.ndarray

    def to_frame(self, matrix: np.ndarray) -> "_Patch":
        normal = matrix[:3, :3] @ self.normal
        return _Patch(transform(matrix, self.points), self.reference, normal / np.linalg.norm(normal))


def support_patch(scene: SceneRecord, anchor_camera: np.ndarray, height_px: float, object_height: float) -> _Patch:
    """Frame-0 pixels within half the object's pixel height of the anchor and half its height in 3D."""
    K = scene.K.astype(np.float64)
    height, width = scene.size
    uv, _ = project(anchor_camera[None], K)
    u0, v0 = uv[0]
    radius = max(3.0, 0.5 * height_px)
    stride = max(1, int(round(radius * np.sqrt(np.pi / PATCH_POINTS))))
    gx, gy = np.meshgrid(np.arange(int(u0 - radius), int(u0 + radius) + 1, stride),
                         np.arange(int(v0 - radius), int(v0 + radius) + 1, stride))
    keep = (gx >= 0) & (gx < width) & (gy >= 0) & (gy < height) & ((gx - u0) ** 2 + (gy - v0) ** 2 <= radius ** 2)
    gx, gy = gx[keep], gy[keep]
    z = scene.depth[0][gy, gx].astype(np.float64)
    ok = np.isfinite(z) & (z > 0)
    pts = unproject(gx[ok].astype(np.float64), gy[ok].astype(np.float64), z[ok], K)
    near = np.linalg.norm(pts - anchor_camera, axis=1) <= 0.5 * object_height
    reference = _texture(scene.frames[0])[gy[ok][near], gx[ok][near]].astype(np.float64)
    textured = near.sum() >= MIN_POINTS and reference.std() >= MIN_TEXTURE
    pts = pts[near]
    normal = np.array([0.0, 0.0, -1.0])
    if len(pts) >= 3:
        _, _, vt = np.linalg.svd(pts - pts.mean(0), full_matrices=False)
        normal = vt[2]
    return _Patch(pts, reference if textured else None, normal)


def _sample_bilinear(grid: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
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


def _flow_step(scene: SceneRecord, t: int, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move pixels uv [N, 2] of frame t by the flow t -> t+1: (uv' [N, 2], valid [N])."""
    s = scene.flow_stride
    cells = uv / s
    flow = _sample_bilinear(scene.flow_fwd[t], cells[:, 0], cells[:, 1])
    if scene.flow_valid is None:
        valid = np.ones(len(uv), bool)
    else:
        grid = scene.flow_valid[t]
        cx = np.clip(np.round(cells[:, 0]).astype(np.int64), 0, grid.shape[1] - 1)
        cy = np.clip(np.round(cells[:, 1]).astype(np.int64), 0, grid.shape[0] - 1)
        valid = grid[cy, cx].astype(bool)
    return uv + flow, valid


def _near_moving(scene: SceneRecord, t: int, uv: np.ndarray) -> np.ndarray:
    """bool [N]: pixels uv [N, 2] within 1% of the image diagonal + a flow cell of a moving pixel."""
    import cv2

    h, w = scene.size
    if len(uv) == 0:
        return np.zeros(0, bool)
    reach = int(round(0.01 * np.hypot(h, w))) + scene.flow_stride
    x0, y0 = np.maximum(np.floor(uv.min(0)).astype(int) - reach, 0)
    x1, y1 = np.minimum(np.ceil(uv.max(0)).astype(int) + reach + 1, [w, h])
    crop = scene.moving[t][y0:y1, x0:x1].astype(np.uint8)
    if not crop.any():
        return np.zeros(len(uv), bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    near = cv2.dilate(crop, kernel).astype(bool)
    return _nearest(near, uv - [x0, y0])


def _inside(uv: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    return np.isfinite(uv).all(1) & (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)


def _lift(scene: SceneRecord, t: int, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels uv [N, 2] (inside) of frame t -> (world points [N, 3], valid depth [N])."""
    z = _sample_bilinear(scene.depth[t], uv[:, 0], uv[:, 1])
    valid = np.isfinite(z) & (z > 0)
    cam = unproject(uv[:, 0], uv[:, 1], np.where(valid, z, 1.0), scene.K.astype(np.float64))
    world = transform(invert_rigid(scene.camera_from_world[t].astype(np.float64)), cam)
    return world, valid


def _nearest(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    x = np.clip(np.round(uv[:, 0]).astype(np.int64), 0, image.shape[1] - 1)
    y = np.clip(np.round(uv[:, 1]).astype(np.int64), 0, image.shape[0] - 1)
    return image[y, x]


def robust_rigid(src: np.ndarray, dst: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Least-median-of-squares rigid fit dst ~ T src, refined by Kabsch on its inliers.

    src, dst [N, 3], N >= 3. Returns (T [4, 4], inlier mask [N]).
    """
    n = len(src)
    idx = np.stack([rng.choice(n, 3, replace=False) for _ in range(LMEDS_TRIALS if n > 3 else 1)])
    R, t = _kabsch_batch(src[idx], dst[idx])  # [T, 3, 3], [T, 3]
    res = np.linalg.norm(np.einsum("tij,nj->tni", R, src) + t[:, None] - dst, axis=2)  # [T, N]
    best_trial = int(np.argmin(np.median(res, axis=1)))
    best = np.eye(4)
    best[:3, :3], best[:3, 3] = R[best_trial], t[best_trial]
    res = np.linalg.norm(transform(best, src) - dst, axis=1)
    sigma = 1.4826 * (1 + 5.0 / max(n - 3, 1)) * np.sqrt(np.median(res ** 2))
    inliers = res <= max(2.5 * sigma, 1e-9)
    if inliers.sum() >= 3:
        best = kabsch(src[inliers], dst[inliers])
    return best, inliers


def _kabsch_batch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigid fits of many small point sets at once: src, dst [T, n, 3] -> (R [T, 3, 3], t [T, 3])."""
    mu_s, mu_d = src.mean(1), dst.mean(1)
    cov = np.einsum("tni,tnj->tij", dst - mu_d[:, None], src - mu_s[:, None])
    U, _, Vt = np.linalg.svd(cov)
    flip = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
    U[:, :, 2] *= flip[:, None]  # proper rotations only (collinear samples give some rotation, scored badly)
    R = U @ Vt
    return R, mu_d - np.einsum("tij,tj->ti", R, mu_s)


def propagate(scene: SceneRecord, world_from_object0: np.ndarray, anchor_world: np.ndarray, top_k: int,
              height_px: float, enabled: bool = True, progress: Optional[Progress] = None) -> ObjectTrack:
    """Track the object's pose [F, 4, 4] from its frame-0 pose.

    anchor_world [3]: the surface point under the anchor (SurfaceFrame.point);
    height_px: the placement's pixel height (sets the support's extent);
    enabled=False keeps the frame-0 world pose in every frame (camera-only ablation).
    The track says per frame how many support points were tracked (support_count) and whether the
    support has left its frame-0 place, so the following pose is used (moving); it keeps the support
    points (object coordinates) for the reprojection's contact check.
    """
    num = scene.num_frames
    pose0 = np.asarray(world_from_object0, np.float64)
    poses = np.repeat(pose0[None], num, axis=0)
    support_count = np.zeros(num, np.int64)
    moving = np.zeros(num, bool)
    K = scene.K.astype(np.float64)
    camera_from_world0 = scene.camera_from_world[0].astype(np.float64)
    object_height = float(np.cbrt(abs(np.linalg.det(pose0[:3, :3]))))
    anchor_cam = transform(camera_from_world0, np.asarray(anchor_world, np.float64)[None])[0]
    support_cam = support_points(scene.depth[0], K, anchor_cam, top_k, height_px, object_height)
    support_world = transform(invert_rigid(camera_from_world0), support_cam)
    object_from_world = np.linalg.inv(pose0)
    local = transform(object_from_world, support_world)  # fixed in the object's frame
    if not enabled or num == 1:
        report(progress, num, num)
        return ObjectTrack(poses, support_count, moving, support=local)
    if scene.flow_fwd is None:
        return ObjectTrack(poses, support_count, moving, support=local,
                           warnings=["the scene record has no optical flow; the object stays fixed in the world"])
    object_from_camera0 = object_from_world @ invert_rigid(camera_from_world0)
    patch = support_patch(scene, anchor_cam, height_px, object_height).to_frame(object_from_camera0)
    support_count[0] = len(local)
    rng = np.random.default_rng(0)
    following = pose0  # the hypothesis that the support moves: it follows the support's flow
    displaced = False
    pending: dict[int, np.ndarray] = {}  # undecided frames since the following pose left the static one
    for t in range(1, num):
        look = _Look(scene, t, patch)
        following, support_count[t], flagged = _follow(scene, t - 1, following, local, patch, look, rng)
        displaced, following = _decide(look, pose0, following, flagged, displaced)
        if displaced:  # the support was already moving in the undecided frames: follow there too
            for k, pose in pending.items():
                poses[k], moving[k] = pose, True
            pending = {}
            poses[t] = following
        elif np.array_equal(following, pose0):
            pending = {}
        else:
            pending[t] = following
        moving[t] = displaced
        report(progress, t, num - 1)
    lost = [t for t in range(1, num) if support_count[t] < MIN_POINTS]
    warnings = [f"support not visible in {len(lost)} frame(s) (first {lost[0]}); pose held there"] if lost else []
    return ObjectTrack(poses, support_count, moving, warnings, local)


def _follow(scene: SceneRecord, t: int, pose: np.ndarray, local: np.ndarray, patch: _Patch, look: "_Look",
            rng: np.random.Generator) -> tuple[np.ndarray, int, float]:
    """Move the following hypothesis t -> t+1 with its support: (pose, points used, share flagged moving).

    It moves when the support's flow clearly differs from a static point's (on a plain support
    only when the reconstruction also flags it moving, on a textured one only while enough of
    it is in view to check its look); the motion is fitted in the support's
    plane (or in 3D when it tilts fast), then refined by aligning the support's look in frame
    t+1 to frame 0 (drift-free; DIS flow underestimates small movers)."""
    fit = _flow_motion(scene, t, pose, local, rng)
    if fit is None:
        return pose, 0, 0.0
    if not fit.significant or (patch.reference is None and fit.flagged < MOVING_FRACTION):
        return pose, fit.used, fit.flagged
    if look.textured and not look.enough(look.sample(pose)[1]):
        return pose, fit.used, fit.flagged  # a textured support mostly hidden: its flow is not trusted
    plane = _Plane.of(pose, patch)
    motion = fit.motion
    if plane.tilt(motion) <= MAX_TILT_DEG:
        motion = _planar_motion(fit, plane, look.camera_from_world, look.K)
    flowed = motion @ pose
    moved = look.align(flowed)
    return (moved if look.agrees(moved, flowed, pose) else flowed), fit.used, fit.flagged


def _decide(look: "_Look", static: np.ndarray, following: np.ndarray, flagged: float,
            displaced: bool) -> tuple[bool, np.ndarray]:
    """Has the support left its frame-0 place? (decision, following pose after a possible reset).

    Frame t's look of the support decides between the static and the following pose (texture
    NCC against frame 0, so the evidence grows as the support travels; the static pose may
    first settle by up to ALIGN_SLACK_PX, so that camera drift alone, which the following pose's
    alignment absorbs, does not count as motion); when it cannot (too
    little in view, or the two look alike) the last decision holds; while the two poses are
    less than MIN_SEPARATION_PX apart the motion mask decides.
    A following pose that looks clearly worse than the static one was led astray (flow dragged
    by a shadow or an occluder) and restarts from the static pose."""
    if not look.textured:  # plain support: it only followed flagged motion
        return bool(displaced or not np.array_equal(following, static)), following
    if look.separation(following, static) < MIN_SEPARATION_PX:
        return flagged >= MOVING_FRACTION, following  # too close for the look to tell apart
    evidence = look.ncc(following, look.settle(static))
    if evidence is None:
        return displaced, following
    if evidence > PHOTO_MARGIN:
        return True, following
    if evidence < -PHOTO_MARGIN:
        return False, static
    return displaced, following


@dataclass
class _Plane:
    """The support's plane where the pose puts it: centre [3], unit normal [3], in-plane axes e1, e2 [3]."""

    centre: np.ndarray
    normal: np.ndarray
    e1: np.ndarray
    e2: np.ndarray

    @classmethod
    def of(cls, pose: np.ndarray, patch: _Patch) -> "_Plane":
        normal = pose[:3, :3] @ patch.normal
        normal /= np.linalg.norm(normal)
        e1 = np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        return cls(transform(pose, patch.points).mean(0), normal, e1, np.cross(normal, e1))

    def motion(self, params: np.ndarray) -> np.ndarray:
        """4x4 world motion: turn by params[2] rad about the normal through the centre, shift by
        params[0] e1 + params[1] e2."""
        c, s = np.cos(params[2]), np.sin(params[2])
        n = self.normal
        cross = np.array([[0, -n[2], n[1]], [n[2], 0, -n[0]], [-n[1], n[0], 0]])
        R = c * np.eye(3) + s * cross + (1 - c) * np.outer(n, n)
        out = np.eye(4)
        out[:3, :3] = R
        out[:3, 3] = self.centre - R @ self.centre + params[0] * self.e1 + params[1] * self.e2
        return out

    def params(self, motion: np.ndarray) -> np.ndarray:
        """The in-plane part (shift along e1, e2; turn about the normal) of a 4x4 motion."""
        turned = motion[:3, :3] @ self.e1
        angle = np.arctan2(np.cross(self.e1, turned) @ self.normal, self.e1 @ turned)
        shift = transform(motion, self.centre[None])[0] - self.centre
        return np.array([shift @ self.e1, shift @ self.e2, angle])

    def tilt(self, motion: np.ndarray) -> float:
        """Degrees by which the motion tips the plane's normal."""
        return float(np.degrees(np.arccos(np.clip(self.normal @ motion[:3, :3] @ self.normal, -1.0, 1.0))))

    def steps(self, camera_from_world: np.ndarray, K: np.ndarray, reach: float) -> np.ndarray:
        """Finite-difference steps for (shift, shift, turn): about 0.3 px at the plane."""
        pixel = max(float(transform(camera_from_world, self.centre[None])[0, 2]) / K[0, 0], 1e-12)
        return np.array([0.3 * pixel, 0.3 * pixel, 0.3 * pixel / max(reach, pixel)])


def _planar_motion(fit: "_FlowFit", plane: _Plane, camera_from_world1: np.ndarray, K: np.ndarray) -> np.ndarray:
    """The in-plane motion (turn about the support's normal + shift within its plane) that best
    moves the support points onto their flowed pixels in frame t+1. Fitting pixels, not lifted 3D
    points, keeps depth noise (a monocular estimate) out: it would show as tilts and shifts along
    the view ray that add up over the video. Used when the 3D fit tilts less than MAX_TILT_DEG."""

    def residual(params):
        uv, _ = project(transform(camera_from_world1 @ plane.motion(params), fit.src), K)
        return np.nan_to_num((uv - fit.uv1).ravel(), nan=1e3)

    reach = float(np.linalg.norm(fit.src - plane.centre, axis=1).mean())
    params = _least_squares(residual, plane.params(fit.motion), plane.steps(camera_from_world1, K, reach), huber=1.0)
    return plane.motion(params)


def _least_squares(residual, params: np.ndarray, steps: np.ndarray, huber: float,
                   iterations: int = ALIGN_ITERATIONS) -> np.ndarray:
    """Damped Gauss-Newton with Huber weights and forward-difference Jacobians (few parameters)."""
    r = residual(params)
    cost = _huber_cost(r, huber)
    damping = 1e-3
    for _ in range(iterations):
        J = np.stack([(residual(params + step * e) - r) / step for step, e in zip(steps, np.eye(len(params)))], 1)
        w = _huber_weights(r, huber)
        A = (J * w[:, None]).T @ J
        g = (J * w[:, None]).T @ r
        delta = -np.linalg.solve(A + damping * np.diag(np.diag(A) + 1e-12), g)
        r_new = residual(params + delta)
        new_cost = _huber_cost(r_new, huber)
        if new_cost < cost:
            params, r, cost, damping = params + delta, r_new, new_cost, damping * 0.3
            if np.all(np.abs(delta) < 0.05 * steps):
                break
        else:
            damping *= 10
    return params


@dataclass
class _FlowFit:
    """The support's world motion t -> t+1 from flow.

    motion [4, 4] (3D fit); src [n, 3] the inlier support points' world positions in frame t,
    uv1 [n, 2] their flowed pixels in frame t+1; flagged = their share marked moving;
    significant = their median flow differs from a static point's by more than MIN_FLOW_PX.
    """

    motion: np.ndarray
    src: np.ndarray
    uv1: np.ndarray
    flagged: float
    significant: bool

    @property
    def used(self) -> int:
        return len(self.src)


def _flow_motion(scene: SceneRecord, t: int, pose: np.ndarray, local: np.ndarray,
                 rng: np.random.Generator) -> Optional[_FlowFit]:
    """Fit the support's motion t -> t+1 from flow; None when too few support points are seen."""
    size = scene.size
    K = scene.K.astype(np.float64)
    cam = transform(scene.camera_from_world[t].astype(np.float64) @ pose, local)
    uv, z = project(cam, K)
    ok = _inside(uv, size) & (z > 0)
    uv = np.nan_to_num(uv)
    ok &= ~(_nearest(scene.depth[t], uv) < z * (1 - HIDDEN_TOLERANCE))  # hidden behind something nearer
    # Flow next to a moving thing is smeared by it: drop static points bordering movers.
    ok &= _nearest(scene.moving[t], uv) | ~_near_moving(scene, t, uv)
    uv = uv[ok]
    src, src_ok = _lift(scene, t, uv)
    uv1, flow_ok = _flow_step(scene, t, uv)
    keep = src_ok & flow_ok & _inside(uv1, size)
    uv, src, uv1 = uv[keep], src[keep], uv1[keep]
    dst, dst_ok = _lift(scene, t + 1, uv1)
    # Drop points that something nearer covers in t+1 (an occluder walking in): the scene
    # there is much nearer than the point itself would be (support motion per frame is small).
    camera_from_world1 = scene.camera_from_world[t + 1].astype(np.float64)
    dst_z, src_z = transform(camera_from_world1, dst)[:, 2], transform(camera_from_world1, src)[:, 2]
    dst_ok &= ~(dst_z < src_z * (1 - HIDDEN_TOLERANCE))
    uv, src, dst, uv1 = uv[dst_ok], src[dst_ok], dst[dst_ok], uv1[dst_ok]
    if len(src) < MIN_POINTS:
        return None
    motion, inliers = robust_rigid(src, dst, rng)
    if inliers.sum() < MIN_POINTS:
        return None
    # Significance in the image, where depth noise hardly enters: the support's flow minus the
    # flow a static point would have under the camera motion (its residual flow).
    static_uv, _ = project(transform(camera_from_world1, src[inliers]), K)
    residual_flow = np.median(uv1[inliers] - static_uv, axis=0)
    return _FlowFit(motion, src[inliers], uv1[inliers], float(_nearest(scene.moving[t], uv[inliers]).mean()),
                    bool(np.linalg.norm(residual_flow) > MIN_FLOW_PX))


class _Look:
    """The support patch as frame t shows it: photometric score and in-plane alignment of a
    pose against the patch's frame-0 appearance (zero-mean normalised, so lighting changes
    and passing shadows matter little)."""

    def __init__(self, scene: SceneRecord, t: int, patch: _Patch):
        self.patch = patch
        self.camera_from_world = scene.camera_from_world[t].astype(np.float64)
        self.K = scene.K.astype(np.float64)
        self.size = scene.size
        self.frame = scene.frames[t]
        self.depth = scene.depth[t]
        self.textured = patch.reference is not None
        self.box = (0, 0, 0, 0)  # (y0, y1, x0, x1) of the maps below, computed on demand
        self.texture = self.nearest_depth = np.zeros((0, 0), np.float32)

    def _maps_cover(self, uv: np.ndarray) -> None:
        """Compute texture and the nearest-depth map (for occluder edges) on a window holding uv."""
        import cv2

        h, w = self.size
        lo = np.clip(np.floor(uv.min(0)).astype(int) - LOOK_MARGIN, 0, [w, h])
        hi = np.clip(np.ceil(uv.max(0)).astype(int) + LOOK_MARGIN + 1, 0, [w, h])
        y0, y1, x0, x1 = self.box
        if y1 > y0 and x0 <= lo[0] and y0 <= lo[1] and hi[0] <= x1 and hi[1] <= y1:
            return
        if y1 > y0:  # grow the window to hold both
            lo, hi = np.minimum(lo, [x0, y0]), np.maximum(hi, [x1, y1])
        pad = int(np.ceil(3 * SHADE_SIGMA)) + 1
        px0, py0 = max(lo[0] - pad, 0), max(lo[1] - pad, 0)
        px1, py1 = min(hi[0] + pad, w), min(hi[1] + pad, h)
        inner = (slice(lo[1] - py0, hi[1] - py0), slice(lo[0] - px0, hi[0] - px0))
        self.texture = _texture(self.frame[py0:py1, px0:px1])[inner]
        reach = int(np.ceil(2 * SHADE_SIGMA))
        depth = np.nan_to_num(self.depth[py0:py1, px0:px1], nan=np.inf).astype(np.float32)
        self.nearest_depth = cv2.erode(depth, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))[inner]
        self.box = (int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0]))

    def sample(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Texture values [m] of the patch points placed by `pose`, and which are seen clearly [m]:
        not hidden and not within the texture filter's reach of something nearer (an occluder's
        edge would show in their texture)."""
        uv, z = project(transform(self.camera_from_world @ pose, self.patch.points), self.K)
        ok = _inside(uv, self.size) & (z > 0)
        uv = np.nan_to_num(uv)
        if not ok.any():
            return np.zeros(len(uv)), ok
        self._maps_cover(uv[ok])
        local = uv - [self.box[2], self.box[0]]
        ok &= ~(_nearest(self.depth, uv) < z * (1 - HIDDEN_TOLERANCE))
        ok &= ~(_nearest(self.nearest_depth, local) < z * (1 - OCCLUDER_GAP))
        return _sample_bilinear(self.texture, local[:, 0], local[:, 1]), ok

    def enough(self, seen: np.ndarray) -> bool:
        """Photometric evidence needs a good share of the patch in view."""
        return int(seen.sum()) >= max(MIN_PHOTO_POINTS, MIN_PHOTO_SHARE * len(seen))

    def agrees(self, aligned: np.ndarray, flowed: np.ndarray, start: np.ndarray) -> bool:
        """The alignment may correct the flow's motion (DIS underestimates small movers), not replace it:
        at the patch it stays within half the flowed motion or ALIGN_SLACK_PX pixels of the flowed pose."""
        centre = transform(start, self.patch.points).mean(0, keepdims=True)
        at = transform(self.camera_from_world @ start, self.patch.points).mean(0)
        pixel = max(float(at[2]) / self.K[0, 0], 1e-12)
        flow_shift = np.linalg.norm(transform(flowed @ np.linalg.inv(start), centre) - centre)
        fix = np.linalg.norm(transform(aligned @ np.linalg.inv(flowed), centre) - centre)
        return bool(fix <= max(0.5 * flow_shift, ALIGN_SLACK_PX * pixel))

    def separation(self, pose: np.ndarray, other: np.ndarray) -> float:
        """Mean pixel distance between the patch placed by the two poses."""
        a, _ = project(transform(self.camera_from_world @ pose, self.patch.points), self.K)
        b, _ = project(transform(self.camera_from_world @ other, self.patch.points), self.K)
        return float(np.nanmean(np.linalg.norm(a - b, axis=1))) if len(a) else 0.0

    def ncc(self, pose: np.ndarray, other: np.ndarray) -> Optional[float]:
        """NCC(pose) - NCC(other) on the points both show clearly; None when undecidable."""
        if not self.textured:
            return None
        (a, ok_a), (b, ok_b) = self.sample(pose), self.sample(other)
        both = ok_a & ok_b
        if not self.enough(both):
            return None
        ref = self.patch.reference[both]
        return _ncc(a[both], ref) - _ncc(b[both], ref)

    def settle(self, pose: np.ndarray) -> np.ndarray:
        """The pose aligned to this frame's look when that moves it at most ALIGN_SLACK_PX, else the pose."""
        aligned = self.align(pose)
        return aligned if self.agrees(aligned, pose, pose) else pose

    def align(self, pose: np.ndarray) -> np.ndarray:
        """Refine the pose by in-plane motion (2 shifts + a turn about the patch normal) so this
        frame's texture at the patch matches frame 0's: robust Gauss-Newton on the standardised
        texture residual."""
        if not self.textured:
            return pose
        _, ok = self.sample(pose)
        if not self.enough(ok):
            return pose
        plane = _Plane.of(pose, self.patch)
        ref = _standard(self.patch.reference[ok])

        def residual(params):
            values, seen = self.sample(plane.motion(params) @ pose)
            # A point slid under an occluder or off the image costs like an outlier.
            return np.where(seen[ok], _standard(values[ok]) - ref, HUBER_K * 2)

        reach = float(np.linalg.norm(transform(pose, self.patch.points) - plane.centre, axis=1).mean())
        steps = plane.steps(self.camera_from_world, self.K, reach)
        params = _least_squares(residual, np.zeros(3), steps, huber=HUBER_K)
        return plane.motion(params) @ pose


def _standard(values: np.ndarray) -> np.ndarray:
    values = values - values.mean()
    return values / max(float(values.std()), 1e-6)


def _huber_weights(r: np.ndarray, k: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= k, 1.0, k / np.maximum(a, 1e-12))


def _huber_cost(r: np.ndarray, k: float) -> float:
    a = np.abs(r)
    return float(np.where(a <= k, 0.5 * a * a, k * (a - 0.5 * k)).sum())


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-9))


def _texture(frame: np.ndarray) -> np.ndarray:
    """float32 [H, W]: the frame's texture without its shading. Log grey, smoothed by BLUR_SIGMA,
    minus its SHADE_SIGMA blur: a passing shadow or a lighting change multiplies the intensity
    smoothly and cancels here, so the photometric checks compare surface patterns."""
    import cv2

    gray = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    log = np.log1p(np.ascontiguousarray(gray))
    return cv2.GaussianBlur(log, (0, 0), BLUR_SIGMA) - cv2.GaussianBlur(log, (0, 0), SHADE_SIGMA)
