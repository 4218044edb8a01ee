"""Reproject: render the placed object into every frame, z-test it against the scene.

Meshes are rasterised exactly (pixel centres inside a triangle, perspective-correct depth),
so mask edges land where a renderer would put them; bare point clouds are splatted as
squares and their holes closed. All in numpy/cv2, vectorised over triangles.

Per frame t (H x W):
  amodal[t]  bool   where the object covers the image, ignoring the scene
  visible[t] bool   amodal and in front of the scene depth (z-buffer test)
  anchor[t]  uint8  [H, W, 3] the frame with the visible object painted in (the "anchor video")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InsertAnywhereError
from ..progress import Progress, report
from .geometry import project, transform
from .object3d import Object3D
from .scene import ObjectTrack, SceneRecord

# Relative depth slack of the occlusion test: the object is hidden only where the scene is
# nearer than object_z * (1 - DEPTH_TOLERANCE). Absorbs depth noise at the contact with
# the support; real occluders are much nearer than that.
DEPTH_TOLERANCE = 0.03
# The object stands on its support, so in every frame its depth is re-anchored to the scene depth
# at its support points (monocular depth stays consistent across frames only to a few percent, and
# an object whose base sinks below its support loses its bottom to the z-test): the median ratio
# of the scene's depth to theirs, over points within CONTACT_BAND of the last ratio, followed
# by at most CONTACT_STEP per frame (an occluder sliding over the support cannot drag it along).
CONTACT_BAND = 0.12
CONTACT_STEP = 0.005
MIN_CONTACT_POINTS = 8
# Vertices with camera z at or below this are behind the near plane; their triangles are dropped.
NEAR_Z = 1e-9
# Pixel tests (and triangle rows) per rasterisation chunk: bounds the working memory (~150 bytes
# per test) and is how often a render reports progress (and can be cancelled).
MAX_CANDIDATES = 500_000
# Barycentric slack of the inside test (pixel centres on an edge count as inside).
INSIDE_EPS = -1e-7
# Row spans are widened by this many pixels before the exact inside test, against round-off.
SPAN_SLACK = 1e-3
MAX_SPLAT_RADIUS = 8


@dataclass
class Render:
    """One frame of the object alone: depth float32 [H, W] (inf where empty), color uint8 [H, W, 3].

    box (y0, y1, x0, x1) bounds every covered pixel, so per-frame work can stay inside it
    (None = the whole frame).
    """

    depth: np.ndarray
    color: np.ndarray
    box: Optional[tuple[int, int, int, int]] = None
    pixel_tests: int = 0  # pixel-triangle tests the rasteriser made (its cost, ~ pixels covered)
    culled: int = 0       # triangles dropped before any per-pixel work (behind, off screen, degenerate)

    @property
    def mask(self) -> np.ndarray:
        return np.isfinite(self.depth)

    @property
    def window(self) -> tuple[slice, slice]:
        if self.box is None:
            return slice(None), slice(None)
        y0, y1, x0, x1 = self.box
        return slice(y0, y1), slice(x0, x1)


def _empty_render(size: tuple[int, int]) -> Render:
    return Render(np.full(size, np.inf, np.float32), np.zeros(size + (3,), np.uint8), (0, 0, 0, 0))


@dataclass
class Reprojection:
    visible: np.ndarray  # bool [F, H, W]
    amodal: np.ndarray   # bool [F, H, W]
    anchor: np.ndarray   # uint8 [F, H, W, 3]


def rasterize(points: np.ndarray, faces: np.ndarray, K: np.ndarray, size: tuple[int, int],
              colors: Optional[np.ndarray] = None, progress: Optional[Progress] = None) -> Render:
    """Z-buffered rasterisation of triangles.

    points float [V, 3] camera coordinates; faces int [M, 3]; colors uint8 [V, 3] or None.
    Triangles with a vertex behind the near plane are dropped (no clipping), as are triangles
    covering no pixel centre of the image (off screen, degenerate) before any per-pixel work.
    Each remaining triangle is walked row by row over the span its edges cut from the row, so
    the cost is ~ faces + pixels covered (not faces x bounding box); Render.pixel_tests counts
    the pixel tests. progress(faces done, faces) is called per chunk; raising from it (Cancel)
    stops the render.
    """
    height, width = size
    faces = np.asarray(faces)
    uv, z = project(np.asarray(points, np.float64), np.asarray(K, np.float64))
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    front = (z[a] > NEAR_Z) & (z[b] > NEAR_Z) & (z[c] > NEAR_Z)
    faces, a, b, c = faces[front], a[front], b[front], c[front]
    u, v = uv[:, 0], uv[:, 1]
    x0, x1 = _pixel_span(u[a], u[b], u[c], width)
    y0, y1 = _pixel_span(v[a], v[b], v[c], height)
    keep = (x1 >= x0) & (y1 >= y0)
    if not keep.any():
        out = _empty_render(size)
        out.culled = len(front)
        return out
    faces, x0, y0, x1, y1 = (arr[keep] for arr in (faces, x0, y0, x1, y1))
    # Work in the window the triangles cover, then paste into full-frame buffers.
    box = (int(y0.min()), int(y1.max()) + 1, int(x0.min()), int(x1.max()) + 1)
    win_h, win_w = box[1] - box[0], box[3] - box[2]
    corners = [(u[faces[:, i]] - box[2], v[faces[:, i]] - box[0]) for i in range(3)]
    (ax, ay), (bx, by), (cx, cy) = corners
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    solid = np.abs(area) > 1e-12
    shade = _shading(points, faces)
    faces, x0, y0, x1, y1, area, shade = (arr[solid] for arr in (faces, x0, y0, x1, y1, area, shade))
    ax, ay, bx, by, cx, cy = (arr[solid] for arr in (ax, ay, bx, by, cx, cy))
    out = _empty_render(size)
    out.box = box
    out.culled = len(front) - len(faces)
    depth = np.full(win_h * win_w, np.inf, np.float32)
    color = np.zeros((win_h * win_w, 3), np.float32)
    tri = _Triangles(ax, ay, bx, by, cx, cy, area, x0 - box[2], y0 - box[0], x1 - box[2],
                     z[faces[:, 0]], z[faces[:, 1]], z[faces[:, 2]],
                     None if colors is None else colors[faces].astype(np.float32), shade)
    out.pixel_tests += _raster_chunks(tri, y1 - y0 + 1, win_w, depth, color, progress)
    out.depth[out.window] = depth.reshape(win_h, win_w)
    out.color[out.window] = np.clip(color, 0, 255).astype(np.uint8).reshape(win_h, win_w, 3)
    return out


def _pixel_span(p: np.ndarray, q: np.ndarray, r: np.ndarray, extent: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last pixel index (int64) inside each triangle's extent along one axis, clipped to
    0..extent-1 (first > last: no pixel centre). Elementwise min/max of the 3 corners: much faster
    than a reduction over a strided axis for large meshes."""
    first = np.clip(np.ceil(np.minimum(np.minimum(p, q), r)), 0, extent).astype(np.int64)
    last = np.clip(np.floor(np.maximum(np.maximum(p, q), r)), -1, extent - 1).astype(np.int64)
    return first, last


def _raster_chunks(tri: "_Triangles", rows: np.ndarray, win_w: int, depth: np.ndarray, color: np.ndarray,
                   progress: Optional[Progress]) -> int:
    """Rasterise the triangles (rows [M] pixel rows each) in chunks of about MAX_CANDIDATES row
    spans into the window buffers; returns the pixel tests. progress follows the faces done."""
    total = len(rows)
    ends = np.cumsum(rows)
    tests = 0
    start = 0
    while start < total:
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + MAX_CANDIDATES, side="right"))
        stop = max(stop, start + 1)
        tests += _raster_faces(tri, np.arange(start, stop), rows[start:stop], win_w, depth, color,
                               lambda done: report(progress, done, total))
        start = stop
        report(progress, start, total)
    return tests


@dataclass
class _Triangles:
    """Screen triangles in window pixels: corners a, b, c, signed doubled area, clipped bbox
    columns x0..x1 and first row y0, camera z of the corners z0, z1, z2, colours [M, 3, 3] or None,
    shading [M]."""

    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    area: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    z0: np.ndarray
    z1: np.ndarray
    z2: np.ndarray
    colors: Optional[np.ndarray]
    shade: np.ndarray


def _raster_faces(tri: _Triangles, idx: np.ndarray, rows: np.ndarray, width: int, depth: np.ndarray,
                  color: np.ndarray, tick) -> int:
    """Rasterise triangles `idx` (rows [n] bbox rows each) into the flat buffers; returns the
    number of pixel tests. Each (triangle, row) gets the column span where all three
    barycentric coordinates are >= INSIDE_EPS; only pixels in the span are tested."""
    face = np.repeat(idx, rows)
    py = (np.arange(len(face)) - np.repeat(np.cumsum(rows) - rows, rows) + tri.y0[face]).astype(np.float64)
    area = tri.area[face]
    # Barycentric l_i = k_i * px + m_i along the row (the same edge functions as the pixel test).
    k0 = -(tri.cy - tri.by)[face] / area
    m0 = ((tri.cx - tri.bx)[face] * (py - tri.by[face]) + (tri.cy - tri.by)[face] * tri.bx[face]) / area
    k1 = -(tri.ay - tri.cy)[face] / area
    m1 = ((tri.ax - tri.cx)[face] * (py - tri.cy[face]) + (tri.ay - tri.cy)[face] * tri.cx[face]) / area
    lo = tri.x0[face].astype(np.float64)
    hi = tri.x1[face].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, m in ((k0, m0), (k1, m1), (-(k0 + k1), 1.0 - m0 - m1)):
            bound = (INSIDE_EPS - m) / k
            lo = np.where(k > 0, np.maximum(lo, bound), lo)
            hi = np.where(k < 0, np.minimum(hi, bound), hi)
            hi = np.where((k == 0) & (m < INSIDE_EPS - 1e-9), -np.inf, hi)
    lo = np.ceil(lo - SPAN_SLACK)
    hi = np.floor(hi + SPAN_SLACK)
    span = np.where(hi >= lo, hi - lo + 1, 0).astype(np.int64)
    ends = np.cumsum(span)
    tests = int(ends[-1]) if len(ends) else 0
    start = 0
    while start < len(span):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + MAX_CANDIDATES, side="right"))
        stop = max(stop, start + 1)
        sl = slice(start, stop)
        count = span[sl]
        pair = np.repeat(np.arange(start, stop), count)
        if len(pair):
            px = lo[pair] + (np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count))
            _raster_pixels(tri, face[pair], px, py[pair], width, depth, color)
            tick(int(face[stop - 1]))
        start = stop
    return tests


def _shading(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-face brightness 0.55..1 from the angle to the viewing ray (gives the render form)."""
    p = np.asarray(points, np.float64)[faces]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    ray = p.mean(axis=1)
    cos = np.abs((n * ray).sum(1)) / np.maximum(np.linalg.norm(n, axis=1) * np.linalg.norm(ray, axis=1), 1e-12)
    return (0.55 + 0.45 * cos).astype(np.float32)


def _raster_pixels(tri: _Triangles, face, px, py, width, depth, color):
    """Test pixel centres (px, py) against their triangles `face`, z-buffer the inside ones
    into the flat depth/color buffers (in place)."""
    bx, by, cx, cy = tri.bx[face], tri.by[face], tri.cx[face], tri.cy[face]
    area = tri.area[face]
    w0 = (cx - bx) * (py - by) - (cy - by) * (px - bx)
    w1 = (tri.ax[face] - cx) * (py - cy) - (tri.ay[face] - cy) * (px - cx)
    l0, l1 = w0 / area, w1 / area
    l2 = 1.0 - l0 - l1
    inside = (l0 >= INSIDE_EPS) & (l1 >= INSIDE_EPS) & (l2 >= INSIDE_EPS)
    if not inside.all():  # the spans are exact up to SPAN_SLACK: few pixels fail
        face, px, py, l0, l1, l2 = face[inside], px[inside], py[inside], l0[inside], l1[inside], l2[inside]
    if not len(face):
        return
    # perspective-correct weights l_i / z_i
    inv_z = (l0 / tri.z0[face], l1 / tri.z1[face], l2 / tri.z2[face])
    z = 1.0 / (inv_z[0] + inv_z[1] + inv_z[2])
    pix = py.astype(np.int64) * width + px.astype(np.int64)
    # Nearest per pixel (ties: the earliest triangle): a scatter-min, then the first candidate
    # reaching it (a sort over these winners only, not over every candidate).
    nearest = np.full(len(depth), np.inf)
    np.minimum.at(nearest, pix, z)
    reach = np.flatnonzero(z == nearest[pix])
    _, first = np.unique(pix[reach], return_index=True)
    win = reach[first]
    pix_w, z_w = pix[win], z[win].astype(np.float32)
    closer = z_w < depth[pix_w]
    pix_w, z_w, win = pix_w[closer], z_w[closer], win[closer]
    depth[pix_w] = z_w
    if tri.colors is not None:
        weights = np.stack([w[win] for w in inv_z], axis=1) * z[win, None]
        rgb = (weights[:, :, None] * tri.colors[face[win]]).sum(1)
        color[pix_w] = rgb * tri.shade[face[win], None]


def splat(points: np.ndarray, K: np.ndarray, size: tuple[int, int], radius: int,
          colors: Optional[np.ndarray] = None) -> Render:
    """Z-buffered square splats of side 2 * radius + 1 px, then holes closed.

    points float [N, 3] camera coordinates; colors uint8 [N, 3] or None.
    """
    import cv2

    height, width = size
    uv, z = project(np.asarray(points, np.float64), np.asarray(K, np.float64))
    ok = (z > 1e-9) & np.isfinite(uv).all(1)
    uv, z = uv[ok], z[ok]
    cols = None if colors is None else np.asarray(colors)[ok].astype(np.float32)
    offs = np.arange(-radius, radius + 1)
    dx, dy = np.meshgrid(offs, offs)
    px = (np.round(uv[:, 0])[:, None] + dx.ravel()).astype(np.int64)
    py = (np.round(uv[:, 1])[:, None] + dy.ravel()).astype(np.int64)
    zz = np.repeat(z[:, None], dx.size, axis=1)
    src = np.repeat(np.arange(len(z))[:, None], dx.size, axis=1)
    inb = (px >= 0) & (px < width) & (py >= 0) & (py < height)
    pix, zz, src = (py * width + px)[inb], zz[inb], src[inb]
    depth = np.full(height * width, np.inf, np.float32)
    color = np.zeros((height * width, 3), np.float32)
    if len(pix):
        order = np.lexsort((zz, pix))
        first = np.ones(len(order), bool)
        first[1:] = pix[order][1:] != pix[order][:-1]
        win = order[first]
        depth[pix[win]] = zz[win]
        if cols is not None:
            color[pix[win]] = cols[src[win]]
    depth = depth.reshape(height, width)
    color = color.reshape(height, width, 3)
    # Close holes between splats: fill pixels that a closing adds with the nearest-in-depth value.
    kernel = np.ones((2 * radius + 3, 2 * radius + 3), np.uint8)
    covered = np.isfinite(depth)
    closed = cv2.morphologyEx(covered.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)
    holes = closed & ~covered
    if holes.any():
        big = np.where(covered, depth, np.float32(3e38)).astype(np.float32)
        depth[holes] = cv2.erode(big, kernel)[holes]
        weight = cv2.boxFilter(covered.astype(np.float32), -1, kernel.shape, normalize=False)
        summed = cv2.boxFilter(color * covered[..., None], -1, kernel.shape, normalize=False)
        color[holes] = summed[holes] / np.maximum(weight[holes, None], 1e-6)
    rows, cols = np.nonzero(np.isfinite(depth).any(1))[0], np.nonzero(np.isfinite(depth).any(0))[0]
    box = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1) if len(rows) else (0, 0, 0, 0)
    return Render(depth, np.clip(color, 0, 255).astype(np.uint8), box)


def auto_splat_radius(obj: Object3D, camera_from_object: np.ndarray, K: np.ndarray) -> int:
    """Splat radius (px) that makes neighbouring points touch at the object's distance: squares
    of side 2r + 1 >= the projected point spacing (0 when points are denser than pixels)."""
    scale = float(np.cbrt(abs(np.linalg.det(camera_from_object[:3, :3]))))
    centre_z = float(transform(camera_from_object, obj.vertices.mean(0, keepdims=True))[0, 2])
    if centre_z <= 0:
        return 1
    spacing_px = obj.point_spacing() * scale * float(K[0, 0]) / centre_z
    return int(np.clip(np.ceil(0.5 * (spacing_px - 1.0)), 0, MAX_SPLAT_RADIUS))


def render_object(obj: Object3D, camera_from_object: np.ndarray, K: np.ndarray, size: tuple[int, int],
                  splat_px: Optional[int] = None, progress: Optional[Progress] = None) -> Render:
    """Render the object (canonical frame) through a 4x4 similarity into a camera.

    progress: see rasterize (meshes report per chunk; raising from it cancels the render)."""
    points = transform(np.asarray(camera_from_object, np.float64), obj.vertices.astype(np.float64))
    if obj.is_mesh:
        return rasterize(points, obj.faces, K, size, obj.colors, progress)
    radius = auto_splat_radius(obj, camera_from_object, K) if splat_px is None else int(splat_px)
    if radius < 0:
        raise InsertAnywhereError(f"Splat size {radius} px is negative; use 0 or more (or leave it automatic).")
    return splat(points, K, size, radius, obj.colors)


def visible_mask(render: Render, scene_depth: np.ndarray, tolerance: float = DEPTH_TOLERANCE) -> np.ndarray:
    """bool [H, W]: object pixels not behind the scene. Invalid scene depth (<= 0, nan) never occludes."""
    out = np.zeros(render.depth.shape, bool)
    win = render.window
    scene = scene_depth[win]
    scene = np.where(np.isfinite(scene) & (scene > 0), scene, np.inf)
    obj = render.depth[win]
    out[win] = np.isfinite(obj) & (obj * (1.0 - tolerance) <= scene)
    return out


def composite(frame: np.ndarray, render: Render, visible: np.ndarray) -> np.ndarray:
    """The frame uint8 [H, W, 3] with the object's colour painted where visible."""
    out = frame.copy()
    paint(out, render, visible)
    return out


def paint(frame: np.ndarray, render: Render, visible: np.ndarray) -> None:
    """Paint the object's colour into `frame` [H, W, 3] where visible (in place)."""
    win = render.window
    region = frame[win]
    shown = visible[win]
    region[shown] = render.color[win][shown]


def contact_scales(scene: SceneRecord, camera_from_object: np.ndarray, support: Optional[np.ndarray]) -> np.ndarray:
    """[F] factor on the object's depth that puts its support points (object coordinates [k, 3])
    back on the scene depth in each frame (see CONTACT_BAND); ones without support points."""
    num = scene.num_frames
    scales = np.ones(num)
    if support is None or len(support) == 0:
        return scales
    K = np.asarray(scene.K, np.float64)
    height, width = scene.size
    scale = 1.0
    for t in range(num):
        uv, z = project(transform(camera_from_object[t], np.asarray(support, np.float64)), K)
        ok = np.isfinite(uv).all(axis=1) & (z > 0)
        ix, iy = np.rint(uv[ok, 0]).astype(int), np.rint(uv[ok, 1]).astype(int)
        inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
        ratio = scene.depth[t][iy[inside], ix[inside]] / z[ok][inside]
        near = ratio[np.abs(ratio - scale) < CONTACT_BAND * scale]
        if len(near) >= max(MIN_CONTACT_POINTS, 0.5 * len(ratio)):
            scale = float(np.clip(np.median(near), scale - CONTACT_STEP, scale + CONTACT_STEP))
        scales[t] = scale
    return scales


def reproject(scene: SceneRecord, obj: Object3D, track: ObjectTrack, occlusion: bool = True,
              splat_px: Optional[int] = None, tolerance: float = DEPTH_TOLERANCE,
              progress: Optional[Progress] = None) -> Reprojection:
    """Render the tracked object into every frame of the scene.

    occlusion=False skips the z-test (visible == amodal), for the camera-only ablation. With the
    track's support points the object's depth follows the scene's at its contact (contact_scales).
    """
    num, (height, width) = scene.num_frames, scene.size
    if track.world_from_object.shape[0] != num:
        raise InsertAnywhereError(
            f"The object track has {track.world_from_object.shape[0]} poses for {num} frames; "
            "propagate the placement on this same scene."
        )
    visible = np.zeros((num, height, width), bool)
    amodal = np.zeros((num, height, width), bool)
    anchor = scene.frames.copy()
    K = np.asarray(scene.K, np.float64)
    poses = np.asarray(scene.camera_from_world, np.float64) @ np.asarray(track.world_from_object, np.float64)
    scales = contact_scales(scene, poses, track.support)
    for t in range(num):
        # within a frame the bar stays at t, but each chunk checks Cancel
        render = render_object(obj, poses[t], K, (height, width), splat_px,
                               None if progress is None else lambda _done, _total, t=t: progress(t, num))
        win = render.window
        amodal[t][win] = np.isfinite(render.depth[win])
        if occlusion:
            contact = Render(render.depth * np.float32(scales[t]), render.color, render.box)
            visible[t] = visible_mask(contact, scene.depth[t], tolerance)
        else:
            visible[t] = amodal[t]
        paint(anchor[t], render, visible[t])
        report(progress, t + 1, num)
    return Reprojection(visible, amodal, anchor)
