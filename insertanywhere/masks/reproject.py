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
MAX_CANDIDATES = 500_000  # pixel-triangle pairs per rasterisation chunk (~150 bytes each)
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
              colors: Optional[np.ndarray] = None) -> Render:
    """Z-buffered rasterisation of triangles.

    points float [V, 3] camera coordinates; faces int [M, 3]; colors uint8 [V, 3] or None.
    Triangles with a vertex behind the camera are dropped (no near-plane clipping).
    """
    height, width = size
    uv, z = project(np.asarray(points, np.float64), np.asarray(K, np.float64))
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    front = (z[a] > 1e-9) & (z[b] > 1e-9) & (z[c] > 1e-9)
    faces, a, b, c = faces[front], a[front], b[front], c[front]
    u, v = uv[:, 0], uv[:, 1]
    # Per-face pixel bounding boxes (elementwise min/max of the 3 corners: much faster than
    # a reduction over a strided axis for large meshes).
    x0 = np.clip(np.ceil(np.minimum(np.minimum(u[a], u[b]), u[c])), 0, width).astype(np.int64)
    x1 = np.clip(np.floor(np.maximum(np.maximum(u[a], u[b]), u[c])), -1, width - 1).astype(np.int64)
    y0 = np.clip(np.ceil(np.minimum(np.minimum(v[a], v[b]), v[c])), 0, height).astype(np.int64)
    y1 = np.clip(np.floor(np.maximum(np.maximum(v[a], v[b]), v[c])), -1, height - 1).astype(np.int64)
    bw = np.maximum(x1 - x0 + 1, 0)
    counts = bw * np.maximum(y1 - y0 + 1, 0)
    keep = counts > 0
    if not keep.any():
        return _empty_render(size)
    faces, x0, y0, x1, y1, bw, counts = (arr[keep] for arr in (faces, x0, y0, x1, y1, bw, counts))
    tri = uv[faces]  # [M', 3, 2], only the faces that cover pixel centres
    # Work in the window the triangles cover, then paste into full-frame buffers.
    box = (int(y0.min()), int(y1.max()) + 1, int(x0.min()), int(x1.max()) + 1)
    win_h, win_w = box[1] - box[0], box[3] - box[2]
    depth = np.full(win_h * win_w, np.inf, np.float32)
    color = np.zeros((win_h * win_w, 3), np.float32)
    tri = tri - [box[2], box[0]]
    x0, y0 = x0 - box[2], y0 - box[0]
    shade = _shading(points, faces)
    ends = np.cumsum(counts)
    start = 0
    while start < len(faces):
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + MAX_CANDIDATES, side="right"))
        stop = max(stop, start + 1)
        sl = slice(start, stop)
        _raster_chunk(tri[sl], z[faces[sl]], x0[sl], y0[sl], bw[sl], counts[sl], win_w, depth, color,
                      None if colors is None else colors[faces[sl]].astype(np.float32), shade[sl])
        start = stop
    out = _empty_render(size)
    out.box = box
    out.depth[out.window] = depth.reshape(win_h, win_w)
    out.color[out.window] = np.clip(color, 0, 255).astype(np.uint8).reshape(win_h, win_w, 3)
    return out


def _shading(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-face brightness 0.55..1 from the angle to the viewing ray (gives the render form)."""
    p = np.asarray(points, np.float64)[faces]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    ray = p.mean(axis=1)
    cos = np.abs((n * ray).sum(1)) / np.maximum(np.linalg.norm(n, axis=1) * np.linalg.norm(ray, axis=1), 1e-12)
    return (0.55 + 0.45 * cos).astype(np.float32)


def _raster_chunk(tri, tz, x0, y0, bw, counts, width, depth, color, tcol, shade):
    """Rasterise one chunk of triangles into the flat depth/color buffers (in place)."""
    face = np.repeat(np.arange(len(tri)), counts)
    local = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    px = (x0[face] + local % bw[face]).astype(np.float64)
    py = (y0[face] + local // bw[face]).astype(np.float64)
    a, b, c = tri[face, 0], tri[face, 1], tri[face, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    w0 = (c[:, 0] - b[:, 0]) * (py - b[:, 1]) - (c[:, 1] - b[:, 1]) * (px - b[:, 0])
    w1 = (a[:, 0] - c[:, 0]) * (py - c[:, 1]) - (a[:, 1] - c[:, 1]) * (px - c[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        l0, l1 = w0 / area, w1 / area
    l2 = 1.0 - l0 - l1
    eps = -1e-7
    inside = (np.abs(area) > 1e-12) & (l0 >= eps) & (l1 >= eps) & (l2 >= eps)
    if not inside.any():
        return
    face, px, py = face[inside], px[inside], py[inside]
    bary = np.stack([l0[inside], l1[inside], l2[inside]], axis=1)
    inv_z = bary / tz[face]  # perspective-correct weights
    z = 1.0 / inv_z.sum(1)
    pix = py.astype(np.int64) * width + px.astype(np.int64)
    order = np.lexsort((z, pix))
    pix_sorted = pix[order]
    first = np.ones(len(order), bool)
    first[1:] = pix_sorted[1:] != pix_sorted[:-1]
    win = order[first]
    pix_w, z_w = pix[win], z[win].astype(np.float32)
    closer = z_w < depth[pix_w]
    pix_w, z_w, win = pix_w[closer], z_w[closer], win[closer]
    depth[pix_w] = z_w
    if tcol is not None:
        weights = inv_z[win] * z[win, None]
        rgb = (weights[:, :, None] * tcol[face[win]]).sum(1)
        color[pix_w] = rgb * shade[face[win], None]


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
                  splat_px: Optional[int] = None) -> Render:
    """Render the object (canonical frame) through a 4x4 similarity into a camera."""
    points = transform(np.asarray(camera_from_object, np.float64), obj.vertices.astype(np.float64))
    if obj.is_mesh:
        return rasterize(points, obj.faces, K, size, obj.colors)
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
    poses = np.asarray(scene.world_to_camera, np.float64) @ np.asarray(track.world_from_object, np.float64)
    scales = contact_scales(scene, poses, track.support)
    for t in range(num):
        render = render_object(obj, poses[t], K, (height, width), splat_px)
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
