"""Place Object: the placement JSON of the pack and the object's pose in frame 0.

The JSON (docs/FORMATS.md; the in-browser editor writes the same):
  {"anchor": [u, v], "height_px": h, "yaw_deg": 0, "pitch_deg": 0, "roll_deg": 0,
   "offset": [0, 0, 0], "top_k": 64}

Math, in frame 0's camera: p = the scene point under the anchor pixel, on the surface plane
fitted to the depth around it; up u = that plane's normal (towards the camera); forward
f = direction p -> camera with its u part removed; right r = u x f; H = height_px * z_p / fy.
A unit-height canonical point X lands at p + H (dx r + dy u + dz f) + H R X with
R = [r u f] Ry(yaw) Rx(pitch) Rz(roll).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional, Union

import numpy as np

from ..errors import InsertAnywhereError
from ..jsontext import parse_json
from ..progress import Progress
from .geometry import invert_rigid, rot_x, rot_y, rot_z, transform, unproject
from .object3d import Object3D
from .vertical import LineEvidence

PLACEMENT_EXAMPLE = '{"anchor": [320, 400], "height_px": 120}'
REQUIRED_KEYS = ("anchor", "height_px")
OPTIONAL_KEYS = ("yaw_deg", "pitch_deg", "roll_deg", "offset", "top_k")
MAX_TOP_K = 4096
# Depth samples around the anchor used for the surface plane: radius in px, as a fraction
# of the object's pixel height, clipped to [MIN_RADIUS, MAX_RADIUS].
WINDOW_FRACTION = 0.5
MIN_RADIUS, MAX_RADIUS = 8, 48
INNER_RADIUS = 4  # px around the anchor where the depth noise is measured
PLANE_TOLERANCE = 0.01  # plane inlier distance relative to the anchor depth, when noise is unknown
RANSAC_TRIALS = 200
# Apparent height in frame 0 (height_px) that can give a usable mask: at least 2 pixels (a smaller
# object rasterises to nothing), at most 10 frame heights (beyond that only a sliver is in view).
MIN_HEIGHT_PX = 2.0
MAX_HEIGHT_FRAMES = 10
TRUSTED_LEAN_DEG = 5.0  # depth normals further than this from the lines' vertical are distorted


@dataclass(frozen=True)
class Placement:
    anchor: tuple[float, float]
    height_px: float
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    roll_deg: float = 0.0
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    top_k: int = 64

    def to_dict(self) -> dict:
        d = asdict(self)
        d["anchor"], d["offset"] = list(self.anchor), list(self.offset)
        return d


@dataclass
class SurfaceFrame:
    """The surface at the anchor, in world coordinates.

    point [3] (p), right/up/forward [3] unit vectors, height = H (world units),
    depth = z of p in frame 0's camera, inlier_ratio of the plane fit; up_source says where
    up came from: "depth" (the plane's normal) or "vertical lines" (see masks.vertical).
    """

    point: np.ndarray
    right: np.ndarray
    up: np.ndarray
    forward: np.ndarray
    height: float
    depth: float
    inlier_ratio: float
    up_source: str = "depth"


@dataclass
class PlacedObject:
    """The object's resolved frame-0 pose on a scene (the Place Object node's IA_PLACEMENT output)."""

    placement: Placement
    world_from_object: np.ndarray  # float [4, 4] similarity: canonical object -> world
    surface: SurfaceFrame

    def __post_init__(self):
        if not isinstance(self.placement, Placement):
            raise ValueError(f"PlacedObject.placement is a {type(self.placement).__name__}, expected a Placement "
                             "(parse it with parse_placement)")
        pose = np.asarray(self.world_from_object)
        if pose.shape != (4, 4) or not np.issubdtype(pose.dtype, np.floating):
            raise ValueError(f"PlacedObject.world_from_object is {pose.dtype} {pose.shape}, expected float [4, 4]")
        if not isinstance(self.surface, SurfaceFrame):
            raise ValueError(f"PlacedObject.surface is a {type(self.surface).__name__}, expected a SurfaceFrame")


def parse_placement(source: Union[str, bytes, dict, Placement]) -> Placement:
    """Strictly validate the placement JSON (text or already-parsed dict)."""
    if isinstance(source, Placement):
        return source
    if isinstance(source, (str, bytes)):
        source = parse_json(source, "The placement", PLACEMENT_EXAMPLE)
    if not isinstance(source, dict):
        raise InsertAnywhereError(
            f"The placement must be a JSON object, got {type(source).__name__}; "
            'write it like {"anchor": [320, 400], "height_px": 120}.'
        )
    unknown = sorted(set(source) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise InsertAnywhereError(
            f"Unknown placement key(s) {unknown}; allowed are {list(REQUIRED_KEYS + OPTIONAL_KEYS)}."
        )
    missing = [k for k in REQUIRED_KEYS if k not in source]
    if missing:
        raise InsertAnywhereError(f"The placement lacks {missing}; give the anchor pixel [u, v] and height_px.")
    height = _number(source["height_px"], "height_px")
    if height <= 0:
        raise InsertAnywhereError(f"height_px is {height}; it must be > 0 (the object's height in pixels).")
    top_k = source.get("top_k", 64)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 3 <= top_k <= MAX_TOP_K:
        raise InsertAnywhereError(f"top_k is {_shown(top_k)}; it must be an integer from 3 to {MAX_TOP_K}.")
    return Placement(
        anchor=tuple(_vector(source["anchor"], 2, "anchor")),
        height_px=height,
        yaw_deg=_number(source.get("yaw_deg", 0.0), "yaw_deg"),
        pitch_deg=_number(source.get("pitch_deg", 0.0), "pitch_deg"),
        roll_deg=_number(source.get("roll_deg", 0.0), "roll_deg"),
        offset=tuple(_vector(source.get("offset", [0, 0, 0]), 3, "offset")),
        top_k=top_k,
    )


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InsertAnywhereError(f"Placement '{name}' is {_shown(value)}; it must be a finite number.")
    return float(value)


def _shown(value, limit: int = 80) -> str:
    """repr for a message, cut to `limit` characters (a pasted 100k-element list stays readable)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _vector(value, length: int, name: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise InsertAnywhereError(f"Placement '{name}' is {_shown(value)}; it must be a list of {length} numbers.")
    return [_number(v, f"{name}[{i}]") for i, v in enumerate(value)]


def check_anchor(anchor: Union[Placement, tuple[float, float]], size: tuple[int, int]) -> None:
    """Raise unless the anchor pixel (u, v) (or a placement's) is inside a frame of size (H, W)."""
    u, v = anchor.anchor if isinstance(anchor, Placement) else anchor
    height, width = size
    if not (-0.5 <= u < width - 0.5 and -0.5 <= v < height - 0.5):
        raise InsertAnywhereError(
            f"The anchor ({u:.1f}, {v:.1f}) is outside frame 0 ({width}x{height}); "
            "pick a pixel inside the first frame."
        )


def surface_plane(depth0: np.ndarray, K: np.ndarray, anchor: tuple[float, float],
                  radius: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Robust plane through the depth around the anchor, in camera-0 coordinates.

    depth0 [H, W]; returns (point p [3] where the anchor's ray meets the plane, unit normal
    [3] towards the camera, inlier ratio).
    """
    height, width = depth0.shape
    u, v = anchor
    check_anchor(anchor, depth0.shape)
    valid = np.isfinite(depth0) & (depth0 > 0)
    iu, iv = int(round(u)), int(round(v))
    if not valid[iv, iu]:
        raise InsertAnywhereError(f"Frame 0 has no depth at the anchor ({u:.0f}, {v:.0f}); pick another pixel.")
    scene_valid = depth0[valid]
    z_anchor, z_spread = _anchor_depth(depth0, valid, u, v)
    if z_anchor >= 0.95 * scene_valid.max() and scene_valid.max() > 3 * np.median(scene_valid):
        raise InsertAnywhereError(
            f"The anchor ({u:.0f}, {v:.0f}) lies on the far background (depth {z_anchor:.3g}, the farthest in "
            "the frame); place the object on a surface such as a floor or a table."
        )
    ys, xs = np.mgrid[max(0, iv - radius):min(height, iv + radius + 1), max(0, iu - radius):min(width, iu + radius + 1)]
    ring = ((xs - u) ** 2 + (ys - v) ** 2 <= radius ** 2) & valid[ys, xs]
    xs, ys = xs[ring], ys[ring]
    pts = unproject(xs.astype(np.float64), ys.astype(np.float64), depth0[ys, xs].astype(np.float64), K)
    ray = np.array([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], 1.0])
    centre = ray * z_anchor
    if len(pts) < 6:
        raise InsertAnywhereError("Too few depth samples around the anchor to find the surface; pick another pixel.")
    dist2 = (xs - u) ** 2 + (ys - v) ** 2
    weight = np.exp(-dist2 / (2 * (radius / 2.0) ** 2))
    tol = _noise_tolerance(pts[dist2 <= INNER_RADIUS ** 2], z_anchor)
    normal, inliers = _ransac_plane(pts, weight, centre, 2 * tol + z_spread, tol)
    for _ in range(3):
        normal, offset = _refine_plane(pts[inliers], weight[inliers])
        res = np.abs(pts @ normal + offset)
        inliers = res < tol
    if normal @ centre > 0:
        normal, offset = -normal, -offset
    denom = normal @ ray
    point = ray * (-offset / denom) if abs(denom) > 0.05 else centre
    if not np.isfinite(point).all() or point[2] <= 0 or abs(point[2] - z_anchor) > 0.2 * z_anchor:
        point = centre  # grazing or inconsistent plane: keep the measured depth
    return point, normal, float(inliers.mean())


def _anchor_depth(depth0: np.ndarray, valid: np.ndarray, u: float, v: float) -> tuple[float, float]:
    """(depth at the sub-pixel anchor, its uncertainty): bilinear when the 4 neighbours are valid,
    else the median of the valid 3x3; uncertainty = half the 3x3 range (large on a depth edge)."""
    height, width = depth0.shape
    iu, iv = int(round(u)), int(round(v))
    win = depth0[max(0, iv - 1):iv + 2, max(0, iu - 1):iu + 2]
    ok = valid[max(0, iv - 1):iv + 2, max(0, iu - 1):iu + 2]
    spread = 0.5 * float(np.ptp(win[ok]))
    x0, y0 = int(np.clip(np.floor(u), 0, width - 2)), int(np.clip(np.floor(v), 0, height - 2))
    fx, fy = float(np.clip(u - x0, 0, 1)), float(np.clip(v - y0, 0, 1))
    if valid[y0:y0 + 2, x0:x0 + 2].all():
        d = depth0[y0:y0 + 2, x0:x0 + 2].astype(np.float64)
        z = (d[0, 0] * (1 - fx) + d[0, 1] * fx) * (1 - fy) + (d[1, 0] * (1 - fx) + d[1, 1] * fx) * fy
        return float(z), spread
    return float(np.median(win[ok])), spread


def _noise_tolerance(inner: np.ndarray, z_anchor: float) -> float:
    """Inlier distance: 3 sigma of the depth noise seen on the innermost patch, so a nearby
    parallel surface (a tray on a counter) is told apart on clean depth, while noisy depth
    (a monocular estimate) still finds its plane."""
    floor, ceiling = 1e-3 * z_anchor, 0.03 * z_anchor  # floor: float16 depth steps
    if len(inner) < 4:
        return PLANE_TOLERANCE * z_anchor
    normal, offset = _refine_plane(inner, np.ones(len(inner)))
    sigma = 1.4826 * np.median(np.abs(inner @ normal + offset))
    return float(np.clip(3 * sigma, floor, ceiling))


def _ransac_plane(pts: np.ndarray, weight: np.ndarray, centre: np.ndarray, centre_tol: float, tol: float):
    """Plane hypotheses from 3 samples; best = most proximity-weighted inliers passing near the anchor."""
    rng = np.random.default_rng(0)
    prob = weight / weight.sum()
    idx = rng.choice(len(pts), size=(RANSAC_TRIALS, 3), p=prob)
    a, b, c = pts[idx[:, 0]], pts[idx[:, 1]], pts[idx[:, 2]]
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1)
    good = norm > 1e-12
    n = n[good] / norm[good, None]
    d = -(n * a[good]).sum(1)
    if len(n) == 0:
        raise InsertAnywhereError("The depth around the anchor is degenerate (a line or a point); pick another pixel.")
    res = np.abs(pts @ n.T + d)  # [N, T]
    through_anchor = np.abs(centre @ n.T + d) < centre_tol
    score = (weight[:, None] * (res < tol)).sum(0) * through_anchor
    best = int(np.argmax(score))
    return n[best], res[:, best] < tol


def _refine_plane(pts: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted least-squares plane (normal [3], offset d with n . x + d = 0)."""
    mean = (weight[:, None] * pts).sum(0) / weight.sum()
    cov = ((pts - mean) * weight[:, None]).T @ (pts - mean)
    _, vecs = np.linalg.eigh(cov)
    normal = vecs[:, 0]
    return normal, float(-normal @ mean)


def surface_frame(point: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right, up, forward) in camera coordinates for a surface point and its normal.

    Forward points from p to the camera within the surface; when the camera looks straight
    along the normal, forward falls back to the image's down direction (so right = image right).
    """
    up = normal / np.linalg.norm(normal)
    to_cam = -point
    forward = to_cam - (to_cam @ up) * up
    if np.linalg.norm(forward) < 1e-3 * np.linalg.norm(to_cam):
        down = np.array([0.0, 1.0, 0.0])
        forward = down - (down @ up) * up
        if np.linalg.norm(forward) < 1e-6:
            forward = np.array([0.0, 0.0, -1.0]) - up[2] * up
    forward = forward / np.linalg.norm(forward)
    right = np.cross(up, forward)
    return right, up, forward


def plane_radius(height_px: float) -> int:
    """Radius (px) of the depth window the surface plane is fitted in, for an object height_px tall."""
    return int(np.clip(WINDOW_FRACTION * height_px, MIN_RADIUS, MAX_RADIUS))


def surface_normal(depth0: np.ndarray, K: np.ndarray, anchor: tuple[float, float], height_px: float,
                   camera_from_world0: Optional[np.ndarray] = None, lines: Optional[LineEvidence] = None):
    """(point p [3], up [3], plane inlier ratio, up source) at the anchor, camera-0 coordinates.

    Up is the depth plane's normal; with `lines` (the scene's vertical lines) and a level surface
    (the lines' vertical within vertical.MAX_DEVIATION degrees of the normal) it is turned to
    point at the vertical vanishing point (upright_normal): monocular depth tilts planes by a
    degree or two, which a thin upright object shows at once; the vanishing point does not.
    """
    point, normal, inlier_ratio = surface_plane(depth0, K, anchor, plane_radius(height_px))
    if lines is None:
        return point, normal, inlier_ratio, "depth"
    rotation = np.eye(3) if camera_from_world0 is None else np.asarray(camera_from_world0, np.float64)[:3, :3]
    vertical = lines.vertical_near(rotation.T @ normal)
    if vertical is None:
        return point, normal, inlier_ratio, "depth"
    return point, upright_normal(normal, rotation @ vertical.direction, point), inlier_ratio, "vertical lines"


def upright_normal(normal: np.ndarray, vertical: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Up at a level surface point [3] from its depth normal [3] and the lines' vertical [3].

    In the image, up must point at the vertical vanishing point: that is any direction in the
    plane through the viewing ray and the vertical, so the normal is projected onto that plane
    (keeping the depth's lean towards the camera). When the two disagree by more than
    TRUSTED_LEAN_DEG the depth plane itself is distorted (a wrong focal length bends it) and
    the vertical is taken whole.
    """
    vertical = vertical / np.linalg.norm(vertical)
    if np.degrees(np.arccos(np.clip(normal @ vertical, -1.0, 1.0))) > TRUSTED_LEAN_DEG:
        return vertical
    side = np.cross(point, vertical)
    side /= np.linalg.norm(side)
    leaned = normal - (normal @ side) * side
    return leaned / np.linalg.norm(leaned)


def placement_pose(placement: Union[Placement, dict, str], depth0: np.ndarray, K: np.ndarray,
                   camera_from_world0: Optional[np.ndarray] = None,
                   lines: Optional[LineEvidence] = None) -> tuple[np.ndarray, SurfaceFrame]:
    """Pose of the unit-height canonical object in frame 0.

    depth0 [H, W] frame 0's camera z; K [3, 3]; camera_from_world0 [4, 4] (identity if None);
    lines: the scene's vertical lines (masks.vertical.scene_lines) to stand the object upright
    on level surfaces, or None for the depth normal alone.
    Returns (world_from_object [4, 4] similarity, the surface frame in world coordinates).
    """
    placement = parse_placement(placement)
    depth0 = np.asarray(depth0, np.float64)
    K = np.asarray(K, np.float64)
    check_height(placement.height_px, depth0.shape)
    point, normal, inlier_ratio, up_source = surface_normal(depth0, K, placement.anchor, placement.height_px,
                                                            camera_from_world0, lines)
    right, up, forward = surface_frame(point, normal)
    H = placement.height_px * point[2] / K[1, 1]
    basis = np.stack([right, up, forward], axis=1)
    R = basis @ rot_y(placement.yaw_deg) @ rot_x(placement.pitch_deg) @ rot_z(placement.roll_deg)
    camera_from_object = np.eye(4)
    camera_from_object[:3, :3] = H * R
    camera_from_object[:3, 3] = point + H * basis @ np.asarray(placement.offset)
    world_from_camera = np.eye(4)
    if camera_from_world0 is not None:
        world_from_camera = invert_rigid(np.asarray(camera_from_world0, np.float64))
    rot = world_from_camera[:3, :3]
    frame = SurfaceFrame(
        point=transform(world_from_camera, point[None])[0], right=rot @ right, up=rot @ up,
        forward=rot @ forward, height=float(H), depth=float(point[2]), inlier_ratio=inlier_ratio,
        up_source=up_source,
    )
    return world_from_camera @ camera_from_object, frame


def check_height(height_px: float, shape: tuple[int, int]) -> None:
    """Refuse an object height (px in frame 0) that cannot give a usable mask in a frame of `shape`:
    under MIN_HEIGHT_PX it covers no pixel (height_px 1e-6 gave empty masks silently), over
    MAX_HEIGHT_FRAMES frame heights only a sliver of it can be in view."""
    frame_h = shape[0]
    if height_px < MIN_HEIGHT_PX:
        raise InsertAnywhereError(
            f"height_px is {height_px:g}: an object under {MIN_HEIGHT_PX:g} pixels tall covers no pixel of the "
            f"{shape[1]}x{frame_h} frames, so its masks would be empty. Give its apparent height in frame 0 in "
            f"pixels (e.g. {max(int(MIN_HEIGHT_PX), frame_h // 4)}).")
    if height_px > MAX_HEIGHT_FRAMES * frame_h:
        raise InsertAnywhereError(
            f"height_px is {height_px:g}, {height_px / frame_h:.0f} times the frame height ({frame_h} px): only a "
            f"sliver of the object could be in view. Give its apparent height in frame 0 in pixels, at most "
            f"{MAX_HEIGHT_FRAMES} x {frame_h}.")


def check_in_front(obj: Object3D, camera_from_object: np.ndarray) -> None:
    """Raise if any part of the placed object is behind frame 0's camera."""
    z = transform(camera_from_object, obj.vertices.astype(np.float64))[:, 2]
    if (z <= 0).any():
        raise InsertAnywhereError(
            f"With this placement {100 * (z <= 0).mean():.0f}% of the object is behind the camera in frame 0; "
            "reduce the offset (dz moves it towards the camera) or the height."
        )


def place_object(placement: Union[Placement, dict, str], obj: Object3D, frame0: np.ndarray, depth0: np.ndarray,
                 K: np.ndarray, camera_from_world0: Optional[np.ndarray] = None,
                 lines: Optional[LineEvidence] = None, progress: Optional[Progress] = None):
    """Pose + preview: (world_from_object [4, 4], SurfaceFrame, preview uint8 [H, W, 3] of frame 0
    with the object rendered in, occluded by the scene depth). lines: see placement_pose.
    progress(done, total) follows the preview's rendering; raising from it (Cancel) stops it."""
    from .reproject import composite, render_object, visible_mask

    world_from_object, frame = placement_pose(placement, depth0, K, camera_from_world0, lines)
    camera_from_world = np.eye(4) if camera_from_world0 is None else np.asarray(camera_from_world0, np.float64)
    camera_from_object = camera_from_world @ world_from_object
    check_in_front(obj, camera_from_object)
    render = render_object(obj, camera_from_object, K, depth0.shape, progress=progress)
    preview = composite(np.asarray(frame0), render, visible_mask(render, depth0))
    return world_from_object, frame, preview
