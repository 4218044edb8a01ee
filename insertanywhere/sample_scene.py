"""Procedural sample scenes with exact ground truth, in the same form as the bench scenes.

A small numpy ray caster renders a textured room (floor, walls, ceiling, posters, a cabinet,
a table and a crate; analytic oriented boxes) seen by a moving camera, and a rasteriser draws
the inserted object (a lathe vase with a handle or a lidded box, a trimesh mesh) z-buffered against it. Because
every pixel knows which primitive it hit and where on it, depth, optical flow, visibility and the
object's masks are exact, not estimated. Used by the unit tests and as the bundled demo input
(nothing may be downloaded).

Kinds:
  static          the object stands on static ground (floor or table); the camera orbits.
  moving_support  the object stands on a tray that slides and turns; the camera dollies.
  occluder        a box-shaped walker crosses in front of the object; the camera pans.
The held-out suite's kinds (SUITE_KINDS: camera motions, occluders, moving supports, hard images)
are laid out by `insertanywhere.suite_scenes`; `insertanywhere bench --suite procedural` scores them.

World frame: +Z up, metres. Cameras: OpenCV (x right, y down, z forward), pixel centres at
integers; `camera_from_world[t]` maps world points to frame t's camera.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from .errors import InsertAnywhereError
from .masks.geometry import invert_rigid, make_pose, rot_y, rot_z
from .masks.scene import SceneRecord
from .progress import Progress, report
from .video import write_video

KINDS = ("static", "moving_support", "occluder")
SUITE_KINDS = ("orbit", "pan", "walk_forward", "handheld", "zoom", "one_occluder", "crossing_occluders",
               "occluder_stops", "sliding_support", "turntable", "carried", "low_texture", "noise_blur")
ALL_KINDS = KINDS + SUITE_KINDS  # the index seeds the generator: append only
BACKGROUND_DEPTH = 100.0
TOP_K = 64
REF_SIZE = 256
_UP = np.array([0.0, 0.0, 1.0])
_LIGHT = np.array([0.35, -0.55, 0.76]) / np.linalg.norm([0.35, -0.55, 0.76])
_WALKER_HEIGHT = 2.1
_WALKER_DEPTH = 0.08  # half depth
_NEAR = 1e-3


class _Light(NamedTuple):
    """Lambert lighting: unit direction [3] towards the light; (ambient, diffuse) for the scene and the object."""

    direction: np.ndarray
    scene: tuple = (0.55, 0.45)
    obj: tuple = (0.5, 0.5)


_DEFAULT_LIGHT = _Light(_LIGHT)


# ----------------------------------------------------------------------------- scene model


@dataclass
class _Material:
    color_a: tuple  # RGB 0..1
    color_b: tuple  # second colour, mixed per tile
    freq: tuple = (4.0, 4.0, 4.0)  # noise cycles per metre along local x, y, z
    tile: tuple = (99.0, 99.0, 99.0)  # tile size in metres along local axes (>= 50: no tiles)
    contrast: float = 0.35  # noise strength
    grout: float = 0.0  # grout line width in metres


@dataclass
class _World:
    """Analytic scene: an interior room box plus oriented boxes, with per-frame poses.

    poses: float64 [P, F, 4, 4] world_from_local (rigid) per primitive id.
    The room's six faces are primitives with identity pose (their local frame is the world).
    """

    room_center: np.ndarray
    room_half: np.ndarray
    room_face_ids: np.ndarray  # [6] prim id of face (axis * 2 + (ray dir > 0))
    boxes: list  # [(prim_id, half [3])]
    poses: np.ndarray
    dynamic: np.ndarray  # bool [P]
    materials: list  # [_Material] per prim
    names: list  # [str] per prim

    def material_arrays(self) -> dict:
        m = self.materials
        return {
            "a": np.array([x.color_a for x in m], dtype=np.float64),
            "b": np.array([x.color_b for x in m], dtype=np.float64),
            "freq": np.array([x.freq for x in m], dtype=np.float64),
            "freq_max": np.array([max(x.freq) for x in m], dtype=np.float64),
            "tile": np.array([x.tile for x in m], dtype=np.float64),
            "contrast": np.array([x.contrast for x in m], dtype=np.float64),
            "grout": np.array([x.grout for x in m], dtype=np.float64),
        }


class _WorldBuilder:
    def __init__(self, num_frames: int):
        self.F = num_frames
        self.poses: list = []
        self.dynamic: list = []
        self.materials: list = []
        self.names: list = []
        self.boxes: list = []

    def _add(self, name: str, poses: np.ndarray, material: _Material, dynamic: bool) -> int:
        self.poses.append(poses)
        self.dynamic.append(dynamic)
        self.materials.append(material)
        self.names.append(name)
        return len(self.poses) - 1

    def plane(self, name: str, material: _Material) -> int:
        return self._add(name, np.broadcast_to(np.eye(4), (self.F, 4, 4)).copy(), material, False)

    def build(self, room_lo: np.ndarray, room_hi: np.ndarray, face_ids: np.ndarray) -> "_World":
        return _World(room_center=0.5 * (room_lo + room_hi), room_half=0.5 * (room_hi - room_lo),
                      room_face_ids=face_ids, boxes=self.boxes, poses=np.stack(self.poses),
                      dynamic=np.array(self.dynamic), materials=self.materials, names=self.names)

    def box(self, name: str, half, material: _Material, center=None, yaw_deg: float = 0.0,
            poses: Optional[np.ndarray] = None, dynamic: bool = False) -> int:
        if poses is None:
            poses = np.broadcast_to(_pose_z(yaw_deg, center), (self.F, 4, 4)).copy()
        pid = self._add(name, poses, material, dynamic)
        self.boxes.append((pid, np.asarray(half, dtype=np.float64)))
        return pid


def _pose_z(yaw_deg: float, center) -> np.ndarray:
    """Rigid pose: rotation about world +Z by yaw, then translation to center."""
    return make_pose(rot_z(yaw_deg), np.asarray(center, dtype=np.float64))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# ----------------------------------------------------------------------------- ray casting


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


# ----------------------------------------------------------------------------- texturing


def _hash01(ix, iy, iz, salt):
    """Integer lattice hash -> float64 in [0, 1)."""
    h = (ix * 73856093) ^ (iy * 19349663) ^ (iz * 83492791) ^ salt
    h = h & 0xFFFFFFFF
    for _ in range(2):
        h = h ^ (h >> 16)
        h = (h * 0x45D9F3B) & 0xFFFFFFFF
    h = h ^ (h >> 16)
    return h / 4294967296.0


def _value_noise(p: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """Smooth 3-D value noise in [0, 1): p [N, 3], salt [N] int64."""
    base = np.floor(p)
    f = p - base
    w = f * f * (3.0 - 2.0 * f)
    i = base.astype(np.int64)
    out = np.zeros(p.shape[0])
    for dx in (0, 1):
        wx = w[:, 0] if dx else 1.0 - w[:, 0]
        for dy in (0, 1):
            wy = w[:, 1] if dy else 1.0 - w[:, 1]
            for dz in (0, 1):
                wz = w[:, 2] if dz else 1.0 - w[:, 2]
                out += wx * wy * wz * _hash01(i[:, 0] + dx, i[:, 1] + dy, i[:, 2] + dz, salt)
    return out


def _fbm(p: np.ndarray, salt: np.ndarray, cycles_per_pixel: np.ndarray, octaves: int = 4) -> np.ndarray:
    """Fractal noise in about [0, 1], band-limited to the pixel footprint.

    p [N, 3] noise coordinates; cycles_per_pixel [N]: base-octave noise cycles per pixel. Octaves
    finer than ~2 pixels fade to their mean, so point sampling does not alias (a cheap mip-map).
    """
    total, amp, norm = np.zeros(p.shape[0]), 1.0, 0.0
    for k in range(octaves):
        wavelength_px = 1.0 / np.maximum(cycles_per_pixel * 2.0 ** k, 1e-9)
        keep = np.clip((wavelength_px - 2.0) / 2.0, 0.0, 1.0)
        sel = np.flatnonzero(keep > 0.0)  # evaluate only where the octave is resolved
        total += 0.5 * amp
        total[sel] += amp * keep[sel] * (_value_noise(p[sel] * (2.0 ** k) + 17.0 * k, salt[sel] + 101 * k) - 0.5)
        norm += amp
        amp *= 0.65
    return total / norm


def _shade(prim: np.ndarray, local: np.ndarray, normal_local: np.ndarray, normal_world: np.ndarray,
           footprint: np.ndarray, mats: dict, salt: int, light: _Light = _DEFAULT_LIGHT) -> np.ndarray:
    """Colour [N, 3] in 0..1 of hits: tiles + fractal noise, Lambert-lit.

    footprint [N]: size of the pixel on the surface in metres. Noise octaves, tile colour steps
    and grout lines are box-filtered over it, so the point-sampled image does not alias.
    """
    tile = mats["tile"][prim]
    on_face = np.abs(normal_local) < 0.5  # the two axes that span the hit face
    tiled = (tile < 50.0) & on_face
    scaled = local / tile
    cell = np.where(tiled, np.floor(scaled), 0).astype(np.int64)
    frac = scaled - np.floor(scaled)
    edge = np.where(tiled, np.minimum(frac, 1.0 - frac) * tile, np.inf)  # metres to the tile border
    nearest, axis = _argmin3(edge[:, 0], edge[:, 1], edge[:, 2])
    rows = np.arange(len(prim))
    salt_p = prim.astype(np.int64) * 7919 + salt
    mix = _hash01(cell[:, 0], cell[:, 1], cell[:, 2], salt_p)
    # Blend with the neighbouring tile across the nearest border within half a pixel of it.
    step = np.where(frac[rows, axis] < 0.5, -1, 1)
    neighbour = cell.copy()
    neighbour[rows, axis] += np.where(np.isfinite(nearest), step, 0)
    mix_n = _hash01(neighbour[:, 0], neighbour[:, 1], neighbour[:, 2], salt_p)
    blend = np.clip(0.5 - nearest / footprint, 0.0, 0.5)
    mix = (1.0 - blend) * mix + blend * mix_n
    color = mats["a"][prim] * (1.0 - mix[:, None]) + mats["b"][prim] * mix[:, None]
    freq = mats["freq"][prim]
    noise = _fbm(local * freq, prim.astype(np.int64) * 31 + salt, mats["freq_max"][prim] * footprint)
    color = color * (1.0 + mats["contrast"][prim][:, None] * (2.0 * noise[:, None] - 1.0))
    # Grout: the fraction of the pixel covered by a line of width g centred on the border.
    g = mats["grout"][prim]
    cover = np.clip(np.minimum(nearest + 0.5 * footprint, 0.5 * g) - np.maximum(nearest - 0.5 * footprint, -0.5 * g),
                    0.0, None) / footprint
    color = color * (1.0 - 0.55 * np.where(np.isfinite(nearest), cover, 0.0))[:, None]
    lit = light.scene[0] + light.scene[1] * np.clip(_rotate(normal_world, light.direction[None])[:, 0], 0.0, None)
    return np.clip(color * lit[:, None], 0.0, 1.0)


# ----------------------------------------------------------------------------- the object


OBJECT_SHAPES = ("vase", "box")
_FACES = (((1, 0, 0), (0, 1, 0), (0, 0, 1)), ((-1, 0, 0), (0, 0, 1), (0, 1, 0)),
          ((0, 1, 0), (0, 0, 1), (1, 0, 0)), ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
          ((0, 0, 1), (1, 0, 0), (0, 1, 0)), ((0, 0, -1), (0, 1, 0), (1, 0, 0)))  # (n, u, v), u x v = n


class _MeshParts:
    """Accumulates vertices [V, 3], triangles [T, 3] and vertex colours [V, 3] (0..1)."""

    def __init__(self):
        self.verts, self.faces, self.colors = [], [], []
        self.count = 0

    def add(self, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> None:
        self.verts.append(verts)
        self.faces.append(faces + self.count)
        self.colors.append(colors)
        self.count += len(verts)

    def grid_box(self, extents, center, color_fn, cells: int = 1) -> None:
        """A box whose faces are `cells` x `cells` grids with their own vertices (flat shading).

        color_fn(points [N, 3], normal [3]) -> colours [N, 3].
        """
        half, center = 0.5 * np.asarray(extents, float), np.asarray(center, float)
        s = np.linspace(-1.0, 1.0, cells + 1)
        si, ti = np.meshgrid(s, s, indexing="ij")
        i, j = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        a = (i * (cells + 1) + j).reshape(-1)
        b, c = a + cells + 1, a + 1
        quads = np.concatenate([np.stack([a, b, c], -1), np.stack([b, b + 1, c], -1)])
        for n, u, v in _FACES:
            n, u, v = (np.asarray(x, float) for x in (n, u, v))
            pts = center + half * n + (si.reshape(-1, 1) * u + ti.reshape(-1, 1) * v) * half
            self.add(pts, quads, color_fn(pts, n))

    def mesh(self):
        """trimesh.Trimesh re-centred on the footprint's bounding box, base at y = 0."""
        import trimesh

        V = np.concatenate(self.verts)
        lo, hi = V.min(axis=0), V.max(axis=0)
        V -= np.array([0.5 * (lo[0] + hi[0]), lo[1], 0.5 * (lo[2] + hi[2])])
        rgb = (np.clip(np.concatenate(self.colors), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
        rgba = np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)
        return trimesh.Trimesh(vertices=V, faces=np.concatenate(self.faces), vertex_colors=rgba, process=False)


def _make_object_mesh(rng: np.random.Generator, shape: str):
    """The inserted object, with vertex colours and a distinct front (+Z) and left (+X) side.

    Canonical frame: +Y up, +Z front, base at y = 0 centred on the footprint's bounding box.
    "vase": a lathe (2 units tall) with a handle on its +X side; "box": a box with a lid and knob.
    """
    hue = rng.uniform(0.0, 1.0)
    body = np.array(_hsv(hue, 0.55, 0.8))
    band = np.array(_hsv(hue + 0.5, 0.6, 0.6))
    emblem = np.array(_hsv(hue + 0.25, 0.8, 0.95))
    parts = _MeshParts()
    if shape == "vase":
        _add_vase(parts, rng, body, band, emblem)
    else:
        _add_lidded_box(parts, rng, body, band, emblem)
    return parts.mesh()


def _add_vase(parts: _MeshParts, rng: np.random.Generator, body, band, emblem) -> None:
    from scipy.interpolate import PchipInterpolator

    height = 2.0
    profile = PchipInterpolator(np.array([0.0, 0.12, 0.7, 1.35, 1.78, 2.0]),
                                np.array([0.42, 0.52, 0.62, 0.33, 0.27, 0.36]) * rng.uniform(0.85, 1.15, size=6))
    rings, sections = 28, 48
    y = np.linspace(0.0, height, rings)
    r = profile(y)
    theta = np.arange(sections) * 2.0 * np.pi / sections
    ring = np.stack([r[:, None] * np.sin(theta), np.broadcast_to(y[:, None], (rings, sections)),
                     r[:, None] * np.cos(theta)], axis=-1).reshape(-1, 3)
    k, j = np.meshgrid(np.arange(rings - 1), np.arange(sections), indexing="ij")
    a = k * sections + j
    b = k * sections + (j + 1) % sections
    c, d = a + sections, b + sections
    bottom, top = rings * sections, rings * sections + 1
    jj = np.arange(sections)
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([b, d, c], -1).reshape(-1, 3),
                            np.stack([np.full(sections, bottom), (jj + 1) % sections, jj], -1),
                            np.stack([np.full(sections, top), (rings - 1) * sections + jj,
                                      (rings - 1) * sections + (jj + 1) % sections], -1)])
    cols = np.tile(body, (len(ring), 1))
    cols[(np.abs(ring[:, 1] - 0.35) < 0.08) | (np.abs(ring[:, 1] - 1.62) < 0.06)] = band
    ang = np.arctan2(ring[:, 0], ring[:, 2])
    cols[(np.abs(ang) < 0.55) & (ring[:, 1] > 0.6) & (ring[:, 1] < 1.2)] = emblem
    parts.add(np.concatenate([ring, [[0.0, 0.0, 0.0], [0.0, height, 0.0]]]), faces,
              np.concatenate([cols, [body, band]]))
    # Handle: two bars out of the body and an upright, on the +X side (the asset's left).
    r_mid = float(profile(0.95))
    handle = _solid(band * 0.8)
    parts.grid_box((0.5, 0.1, 0.14), (r_mid + 0.15, 1.3, 0.0), handle)
    parts.grid_box((0.5, 0.1, 0.14), (r_mid + 0.15, 0.6, 0.0), handle)
    parts.grid_box((0.1, 0.8, 0.14), (r_mid + 0.35, 0.95, 0.0), handle)


def _add_lidded_box(parts: _MeshParts, rng: np.random.Generator, body, band, emblem) -> None:
    w, h, d = rng.uniform(1.2, 1.6), rng.uniform(0.9, 1.2), rng.uniform(0.8, 1.1)

    def body_colors(pts, n):
        cols = np.tile(body, (len(pts), 1))
        if n[2] > 0.5:  # a label on the front
            cols[(np.abs(pts[:, 0]) < 0.3 * w) & (pts[:, 1] > 0.3 * h) & (pts[:, 1] < 0.75 * h)] = emblem
        if n[0] > 0.5:  # a stripe on the left (+X) side
            cols[np.abs(pts[:, 1] - 0.5 * h) < 0.12 * h] = band
        return cols

    parts.grid_box((w, h, d), (0.0, 0.5 * h, 0.0), body_colors, cells=8)
    parts.grid_box((w + 0.12, 0.22, d + 0.12), (0.0, h + 0.11, 0.0), _solid(band), cells=2)
    parts.grid_box((0.28, 0.18, 0.28), (0.0, h + 0.31, 0.0), _solid(emblem))


def _solid(color):
    """Colour function for `_MeshParts.grid_box`: one colour everywhere."""
    def colors(pts, normal):
        return np.tile(color, (len(pts), 1))
    return colors


def _hsv(h: float, s: float, v: float) -> tuple:
    import colorsys

    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def _rasterize(verts_cam: np.ndarray, faces: np.ndarray, K: np.ndarray, height: int, width: int,
               attrs: np.ndarray):
    """Z-buffered, perspective-correct triangle rasteriser (pixel centres at integers).

    verts_cam [V, 3] camera points; faces [T, 3]; attrs [V, C].
    Returns depth [H, W] float64 (inf where empty) and attr image [H, W, C] float64.
    """
    depth = np.full(height * width, np.inf)
    out = np.zeros((height * width, attrs.shape[1]))
    z = verts_cam[:, 2]
    faces = faces[(z[faces] > _NEAR).all(axis=1)]
    if len(faces) == 0:
        return depth.reshape(height, width), out.reshape(height, width, -1)
    safe_z = np.where(z > _NEAR, z, 1.0)
    uv = np.stack([K[0, 0] * verts_cam[:, 0] / safe_z + K[0, 2], K[1, 1] * verts_cam[:, 1] / safe_z + K[1, 2]], -1)
    tri = uv[faces]  # [T, 3, 2]
    umin = np.clip(np.ceil(tri[..., 0].min(1)), 0, width).astype(np.int64)
    umax = np.clip(np.floor(tri[..., 0].max(1)), -1, width - 1).astype(np.int64)
    vmin = np.clip(np.ceil(tri[..., 1].min(1)), 0, height).astype(np.int64)
    vmax = np.clip(np.floor(tri[..., 1].max(1)), -1, height - 1).astype(np.int64)
    bw = np.maximum(umax - umin + 1, 0)
    count = bw * np.maximum(vmax - vmin + 1, 0)
    total = int(count.sum())
    if total == 0:
        return depth.reshape(height, width), out.reshape(height, width, -1)
    ti = np.repeat(np.arange(len(faces)), count)
    within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    pu = umin[ti] + within % bw[ti]
    pv = vmin[ti] + within // bw[ti]
    a, b, c = tri[ti, 0], tri[ti, 1], tri[ti, 2]

    def edge(p0, p1, x, y):
        return (p1[:, 0] - p0[:, 0]) * (y - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (x - p0[:, 0])

    area = edge(a, b, c[:, 0], c[:, 1])
    ok = np.abs(area) > 1e-12
    area = np.where(ok, area, 1.0)
    wa = edge(b, c, pu, pv) / area
    wb = edge(c, a, pu, pv) / area
    wc = edge(a, b, pu, pv) / area
    inside = ok & (wa >= 0) & (wb >= 0) & (wc >= 0)
    ti, pu, pv, wa, wb, wc = ti[inside], pu[inside], pv[inside], wa[inside], wb[inside], wc[inside]
    fz = z[faces[ti]]
    bary = np.stack([wa, wb, wc], -1) / fz  # perspective-correct weights (unnormalised)
    inv_z = bary.sum(1)
    frag_z = 1.0 / inv_z
    pix = pv * width + pu
    order = np.lexsort((frag_z, pix))
    first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]]
    w = bary[first] / inv_z[first, None]
    depth[pix[first]] = frag_z[first]
    out[pix[first]] = np.einsum("nk,nkc->nc", w, attrs[faces[ti[first]]])
    return depth.reshape(height, width), out.reshape(height, width, -1)


def _render_object(mesh, world_from_mesh: np.ndarray, camera_from_world: np.ndarray, K: np.ndarray,
                   height: int, width: int, light: _Light = _DEFAULT_LIGHT):
    """Object depth [H, W] (inf where absent) and lit colour [H, W, 3] in 0..1."""
    camera_from_mesh = camera_from_world @ world_from_mesh
    V = np.asarray(mesh.vertices, dtype=np.float64)
    verts_cam = V @ camera_from_mesh[:3, :3].T + camera_from_mesh[:3, 3]
    R = world_from_mesh[:3, :3]
    normals_world = np.asarray(mesh.vertex_normals, dtype=np.float64) @ R.T
    colors = np.asarray(mesh.visual.vertex_colors, dtype=np.float64)[:, :3] / 255.0
    depth, attr = _rasterize(verts_cam, np.asarray(mesh.faces), K, height, width,
                             np.concatenate([colors, normals_world], axis=1))
    n = attr[..., 3:]
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    lit = light.obj[0] + light.obj[1] * np.clip(n @ light.direction, 0.0, None)
    return depth, np.clip(attr[..., :3] * lit[..., None], 0.0, 1.0)


def _look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """camera_from_world 4x4 (OpenCV) of a camera at eye looking at target."""
    fwd = target - eye
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, up)
    right = right / np.linalg.norm(right)
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    return make_pose(R, -R @ eye)


def _render_reference(mesh, size: int = REF_SIZE):
    """Front view of the mesh on white: (rgb uint8 [S, S, 3], mask uint8 [S, S] 0/255)."""
    V = np.asarray(mesh.vertices)
    center = 0.5 * (V.min(0) + V.max(0))
    radius = float(np.linalg.norm(V - center, axis=1).max())
    dist = 5.0 * radius
    elev = math.radians(8.0)
    eye = center + dist * np.array([0.0, math.sin(elev), math.cos(elev)])
    camera_from_world = _look_at(eye, center, np.array([0.0, 1.0, 0.0]))
    f = 0.92 * (size / 2.0) * (dist - radius) / radius
    K = np.array([[f, 0, (size - 1) / 2.0], [0, f, (size - 1) / 2.0], [0, 0, 1.0]])
    depth, color = _render_object(mesh, np.eye(4), camera_from_world, K, size, size)
    mask = np.isfinite(depth)
    rgb = np.where(mask[..., None], color, 1.0)
    return (rgb * 255 + 0.5).astype(np.uint8), (mask * 255).astype(np.uint8)


# ----------------------------------------------------------------------------- placement


def derive_placement(world_from_mesh: np.ndarray, mesh_height: float, surface_normal: np.ndarray,
                     camera_from_world: np.ndarray, K: np.ndarray) -> dict:
    """Invert docs/FORMATS.md's placement rules for a frame-0 object pose.

    world_from_mesh: [4, 4] similarity whose mesh +Y is the surface normal; the mesh's base centre
    (origin) is the point p on the surface. Returns the placement dict (anchor, height_px, yaw...).
    """
    p = world_from_mesh[:3, 3]
    scale = float(np.linalg.norm(world_from_mesh[:3, 0]))
    R_obj = world_from_mesh[:3, :3] / scale
    R_c, t_c = camera_from_world[:3, :3], camera_from_world[:3, 3]
    pc = R_c @ p + t_c
    eye = -R_c.T @ t_c
    up = surface_normal / np.linalg.norm(surface_normal)
    if up @ (eye - p) < 0:
        up = -up
    fwd = (eye - p) - ((eye - p) @ up) * up
    fwd = fwd / np.linalg.norm(fwd)
    basis = np.stack([np.cross(up, fwd), up, fwd], axis=1)
    R_y = basis.T @ R_obj
    yaw = math.degrees(math.atan2(R_y[0, 2], R_y[0, 0]))
    if np.abs(R_y - rot_y(yaw)).max() > 1e-9:
        raise RuntimeError("object is not upright on its surface; cannot express it as a yaw")
    return {
        "anchor": [float(K[0, 0] * pc[0] / pc[2] + K[0, 2]), float(K[1, 1] * pc[1] / pc[2] + K[1, 2])],
        "height_px": float(scale * mesh_height * K[1, 1] / pc[2]),
        "yaw_deg": yaw,
        "pitch_deg": 0.0,
        "roll_deg": 0.0,
        "offset": [0.0, 0.0, 0.0],
        "top_k": TOP_K,
    }


# ----------------------------------------------------------------------------- layout


def _palette(rng: np.random.Generator, hue: float, sat: float, val: float, spread: float = 0.06):
    a = _hsv(hue + rng.uniform(-spread, spread), sat, val)
    b = _hsv(hue + rng.uniform(-spread, spread), sat * rng.uniform(0.7, 1.1), val * rng.uniform(0.75, 0.95))
    return a, b


@dataclass
class _Layout:
    """What a kind lays out. support_motion[t] maps frame-0 world points on the support to frame t;
    zoom [F] multiplies the focal length (None: fixed K); blur_cams [F, S, 4, 4] are sub-frame
    cameras averaged into each frame (motion blur; None: sharp); noise_std is the sensor noise
    (standard deviation, 0..1 image units)."""

    world: _World
    support_pid: int
    p0: np.ndarray
    cams: np.ndarray
    support_motion: np.ndarray
    zoom: Optional[np.ndarray] = None
    light: _Light = _DEFAULT_LIGHT
    blur_cams: Optional[np.ndarray] = None
    noise_std: float = 0.0


def _build_layout(kind: str, F: int, rng: np.random.Generator, obj_height: float, obj_radius: float) -> _Layout:
    """Room, furniture, the support, the object's frame-0 base point p0 [3], and the camera path."""
    wb = _WorldBuilder(F)
    tau = np.linspace(0.0, 1.0, F)
    room_lo, room_hi, face_ids = _add_room(wb, rng)
    side = rng.choice([-1.0, 1.0])  # the side of the object where the spare furniture stands
    _add_decor(wb, rng, room_lo, room_hi, side)
    support = {"static": rng.choice(["floor", "table"]), "moving_support": "tray",
               "occluder": rng.choice(["crate", "floor"])}[kind]  # (both choices are drawn, always)
    support_pid, p0, support_motion = _add_support(support, wb, rng, tau, side, int(face_ids[4]), obj_radius)
    cams = _camera_path(kind, rng, tau, p0, obj_height)
    if kind == "occluder":
        _add_walker(wb, cams, p0, obj_radius, _clearance(wb.names[support_pid]), rng)
    return _Layout(wb.build(room_lo, room_hi, face_ids), support_pid, p0, cams, support_motion)


def _clearance(support_name: str) -> float:
    """Metres in front of the object's base that a walker keeps, so it clears the support."""
    return 0.55 if support_name == "crate" else 0.3


def _add_room(wb: _WorldBuilder, rng: np.random.Generator):
    """Floor, ceiling and four walls; returns (room_lo [3], room_hi [3], face_ids [6])."""
    room_lo = np.array([-rng.uniform(2.2, 3.0), -4.5, 0.0])
    room_hi = np.array([rng.uniform(2.2, 3.0), rng.uniform(2.0, 3.0), rng.uniform(2.6, 3.0)])
    tile = rng.uniform(0.3, 0.6)
    floor = wb.plane("floor", _Material(*_palette(rng, rng.choice([0.07, 0.09, 0.55, 0.0]), 0.45, 0.7),
                                        freq=(16, 16, 16), tile=(tile, tile, 99), contrast=0.45, grout=0.02))
    ceiling = wb.plane("ceiling", _Material((0.92, 0.92, 0.9), (0.88, 0.88, 0.86), freq=(2, 2, 2), contrast=0.08))
    wall_hue = rng.uniform(0, 1)
    stripe = rng.uniform(0.12, 0.25)
    walls = [wb.plane(f"wall{i}", _Material(*_palette(rng, wall_hue + 0.1 * i, 0.25, 0.85), freq=(12, 12, 12),
                                             tile=(stripe, stripe, 99) if i % 2 else (99, 99, 0.5), contrast=0.3))
             for i in range(4)]
    # face order: axis * 2 + (ray dir > 0) -> x-, x+, y-, y+, floor (z-), ceiling (z+)
    return room_lo, room_hi, np.array(walls + [floor, ceiling])


def _add_decor(wb: _WorldBuilder, rng: np.random.Generator, room_lo, room_hi, side: float) -> None:
    """A cabinet by the back wall, posters, and a rug: behind the object, never between it and the camera."""
    y_back = room_hi[1]
    wb.box("cabinet", (0.7, 0.22, 0.45), _Material(*_palette(rng, rng.uniform(0, 1), 0.35, 0.6), freq=(9, 9, 9),
                                                     tile=(0.35, 99, 0.3), contrast=0.25, grout=0.015),
           center=(rng.uniform(-1.0, 1.0), y_back - 0.22, 0.45))
    for i, (half, center) in enumerate((((0.32, 0.01, 0.22), (rng.uniform(-1.5, 1.5), y_back - 0.01, 1.55)),
                                        ((0.01, 0.28, 0.2), (room_hi[0] - 0.01, rng.uniform(0.0, 1.5), 1.4)),
                                        ((0.01, 0.28, 0.2), (room_lo[0] + 0.01, rng.uniform(0.0, 1.5), 1.3)))):
        wb.box(f"poster{i}", half, _Material(*_palette(rng, rng.uniform(0, 1), 0.7, 0.8, 0.3), freq=(9, 9, 9),
                                             tile=(0.08, 0.08, 0.08), contrast=0.3), center=center)
    wb.box("rug", (0.6, 0.4, 0.004), _Material(*_palette(rng, rng.uniform(0, 1), 0.6, 0.6, 0.2), freq=(10, 10, 10),
                                               tile=(0.2, 0.2, 99), contrast=0.35, grout=0.01),
           center=(-side * 1.2, 1.3, 0.004), yaw_deg=rng.uniform(-20, 20))


def _add_table(wb: _WorldBuilder, material: _Material, center_xy, yaw: float) -> int:
    """A table (top at 0.75 m) on four legs; returns the top's prim id."""
    top = wb.box("table_top", (0.6, 0.4, 0.025), material, center=(center_xy[0], center_xy[1], 0.725), yaw_deg=yaw)
    R = rot_z(yaw)
    for sx in (-1, 1):
        for sy in (-1, 1):
            leg = R @ np.array([sx * 0.54, sy * 0.34, 0.0])
            wb.box("table_leg", (0.03, 0.03, 0.35), material,
                   center=(center_xy[0] + leg[0], center_xy[1] + leg[1], 0.35), yaw_deg=yaw)
    return top


def _add_support(support: str, wb: _WorldBuilder, rng: np.random.Generator, tau: np.ndarray, side: float,
                 floor_pid: int, obj_radius: float, board=None):
    """The table and crate, one of which (or the floor, or a board on the table) carries the object.

    support: floor, table, crate, tray (slides and turns) or board: then board(wb, rng, tau, point on
    the table [3], obj_radius) adds the moving board and returns what this returns.
    Returns (support_pid, p0 [3] the object's base point in frame 0, support_motion [F, 4, 4]).
    """
    wood = _Material(*_palette(rng, 0.08, 0.6, 0.55), freq=(1.5, 24, 24), tile=(99, 0.12, 99), contrast=0.35,
                     grout=0.006)
    crate = _Material(*_palette(rng, 0.1, 0.5, 0.65), freq=(8, 8, 8), tile=(0.1, 0.1, 0.1), contrast=0.3, grout=0.01)
    still = np.broadcast_to(np.eye(4), (len(tau), 4, 4)).copy()
    p0 = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), 0.0])
    if support in ("table", "tray", "board"):
        top = _add_table(wb, wood, p0[:2], rng.uniform(-15, 15))
    else:
        _add_table(wb, wood, (side * 1.3, 1.0), rng.uniform(-30, 30))
    if support == "crate":
        pid = wb.box("crate", (0.3, 0.25, 0.225), crate, center=(p0[0], p0[1], 0.225), yaw_deg=rng.uniform(-30, 30))
        return pid, p0 + np.array([rng.uniform(-0.06, 0.06), rng.uniform(-0.05, 0.05), 0.45]), still
    wb.box("crate", (0.3, 0.25, 0.225), crate, center=(-side * 1.1, 0.9, 0.225), yaw_deg=rng.uniform(-30, 30))
    if support == "floor":
        return floor_pid, p0, still
    if support == "table":
        return top, p0 + np.array([0.0, 0.0, 0.75]), still
    if support == "board":
        return board(wb, rng, tau, p0 + np.array([0.0, 0.0, 0.75]), obj_radius)
    return _add_tray(wb, rng, tau, p0, obj_radius)


def _camera_path(kind: str, rng: np.random.Generator, tau: np.ndarray, p0: np.ndarray, obj_height: float):
    """camera_from_world [F, 4, 4]: orbit (static), dolly (moving_support) or pan (occluder), from the -y side."""
    F = len(tau)
    frac = rng.uniform(0.22, 0.3)  # object height / image height in frame 0 (focal = 0.89 W, W / H = 5 / 3)
    dist = obj_height * 1.48 / frac
    elev = math.radians(rng.uniform(22, 34))
    az0 = math.radians(-90 + rng.uniform(-20, 20))
    lateral = np.array([-math.sin(az0), math.cos(az0), 0.0])
    target = p0 + _UP * (0.5 * obj_height) + lateral * dist * rng.uniform(-0.15, 0.15)
    sgn = rng.choice([-1.0, 1.0])
    az, dists, shift = np.full(F, az0), np.full(F, dist), np.zeros(F)
    if kind == "static":
        az = az0 + sgn * math.radians(rng.uniform(25, 40)) * (tau - 0.5)
    elif kind == "moving_support":
        az = az0 + sgn * math.radians(rng.uniform(6, 12)) * (tau - 0.5)
        dists = dist * (1.05 - rng.uniform(0.1, 0.2) * tau)
    else:
        shift = sgn * rng.uniform(0.35, 0.55) * (tau - 0.5)
    cams = np.empty((F, 4, 4))
    for t in range(F):
        offset = dists[t] * np.array([math.cos(elev) * math.cos(az[t]), math.cos(elev) * math.sin(az[t]),
                                      math.sin(elev)])
        cams[t] = _look_at(target + offset + shift[t] * lateral, target + 0.25 * shift[t] * lateral, _UP)
    return cams


def _add_tray(wb: _WorldBuilder, rng: np.random.Generator, tau: np.ndarray, table_point: np.ndarray,
              obj_radius: float):
    """A tray on the table that slides 20-30 cm and turns 15-25 degrees; returns (pid, p0, motion [F, 4, 4])."""
    slide = rng.uniform(0.2, 0.3)
    turn = rng.choice([-1.0, 1.0]) * rng.uniform(15, 25)
    direction = rng.uniform(0, 2 * math.pi)
    dvec = np.array([math.cos(direction), math.sin(direction), 0.0])
    start = np.array([table_point[0], table_point[1], 0.765]) - 0.5 * slide * dvec
    yaw0 = rng.uniform(-30, 30)
    s = _smoothstep((tau - 0.1) / 0.8)
    poses = np.stack([_pose_z(yaw0 + turn * si, start + slide * si * dvec) for si in s])
    half = (max(0.2, obj_radius + 0.12), max(0.15, obj_radius + 0.08), 0.015)
    mat = _Material(*_palette(rng, rng.uniform(0, 1), 0.6, 0.7, 0.15), freq=(14, 14, 14), tile=(0.06, 0.06, 99),
                    contrast=0.3, grout=0.006)
    pid = wb.box("tray", half, mat, poses=poses, dynamic=True)
    local_p = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.03, 0.03), 0.015])
    p0 = poses[0, :3, :3] @ local_p + poses[0, :3, 3]
    return pid, p0, poses @ invert_rigid(poses[0])


def _add_walker(wb: _WorldBuilder, cams: np.ndarray, p0: np.ndarray, obj_radius: float, clearance: float,
                rng: np.random.Generator) -> None:
    """A box-shaped walker that crosses the camera-object line: free, partial, full, partial, free."""
    F = cams.shape[0]
    tau = np.linspace(0.0, 1.0, F)
    eyes = np.stack([-c[:3, :3].T @ c[:3, 3] for c in cams])
    to_cam0 = eyes[0] - p0
    to_cam0[2] = 0.0
    dist = float(np.linalg.norm(to_cam0))
    lateral = np.cross(_UP, to_cam0 / dist)
    # Cross the view line `clearance` metres in front of the object (clear of its support).
    lam = min(0.6, (clearance + rng.uniform(0.0, 0.1)) / dist)  # fraction of the way to the camera
    cone = (1.0 - lam) * obj_radius  # half-width of the object's view cone where the walker crosses it
    half_w = max(rng.uniform(0.18, 0.22), 1.6 * cone)
    # Free at both ends; fully hiding the object for about 35% of the frames, but slow enough that
    # each of its edges takes about 2.5 frames to cross the object (partial occlusion).
    reach = max(half_w + cone + _WALKER_DEPTH + 0.03, min((half_w - cone) / 0.35, cone * (F - 1) / 2.5))
    sweep = rng.choice([-1.0, 1.0]) * reach * (2.0 * tau - 1.0)
    yaw = math.degrees(math.atan2(lateral[1], lateral[0]))
    poses = np.empty((F, 4, 4))
    for t in range(F):
        center = p0 + lam * (eyes[t] - p0) + sweep[t] * lateral
        center[2] = 0.5 * _WALKER_HEIGHT
        poses[t] = _pose_z(yaw, center)
    mat = _Material(*_palette(rng, rng.uniform(0, 1), 0.65, 0.55, 0.1), freq=(7, 7, 7), tile=(99, 99, 0.18),
                    contrast=0.3, grout=0.02)
    wb.box("walker", (half_w, _WALKER_DEPTH, 0.5 * _WALKER_HEIGHT), mat, poses=poses, dynamic=True)


# ----------------------------------------------------------------------------- the scene


@dataclass
class SampleScene:
    """A rendered sample scene with exact ground truth. Shapes: F frames, H x W pixels.

    frames uint8 [F, H, W, 3] (scene without the object); depth float32 [F, H, W] camera z
    (capped at 100); K float64 [3, 3]; camera_from_world float64 [F, 4, 4]; dynamic bool [F, H, W];
    object_mesh trimesh.Trimesh (canonical frame); object_ref uint8 [h, w, 3]; object_ref_mask
    uint8 [h, w] 0/255; placement dict (docs/FORMATS.md); object_world_from_mesh float64 [F, 4, 4];
    gt_visible, gt_amodal bool [F, H, W]; composite uint8 [F, H, W, 3]; surface_normal float64 [3]
    (exact world normal of the support at the anchor in frame 0).
    """

    kind: str
    seed: int
    name: str
    description: str
    fps: float
    frames: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    camera_from_world: np.ndarray
    dynamic: np.ndarray
    object_mesh: object
    object_ref: np.ndarray
    object_ref_mask: np.ndarray
    placement: dict
    object_world_from_mesh: np.ndarray
    gt_visible: np.ndarray
    gt_amodal: np.ndarray
    composite: np.ndarray
    surface_normal: np.ndarray
    world: _World = field(repr=False)
    hit_prim: np.ndarray = field(repr=False)  # int16 [F, H, W] primitive id per pixel
    hit_local: np.ndarray = field(repr=False)  # float32 [F, H, W, 3] hit point in the primitive's frame
    K_per_frame: Optional[np.ndarray] = field(default=None, repr=False)  # float64 [F, 3, 3] when the focal changes
    _flow: Optional[tuple] = field(default=None, repr=False)

    def K_at(self, t: int) -> np.ndarray:
        """Frame t's K [3, 3] (`K` is frame 0's)."""
        return self.K if self.K_per_frame is None else self.K_per_frame[t]

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def flow(self) -> tuple:
        """Exact dense flow: (fwd float32 [F-1, H, W, 2], bwd float32 [F-1, H, W, 2], valid bool [F-1, H, W]).

        fwd[t] moves frame t's pixels to frame t+1, bwd[t] frame t+1's to frame t. valid[t] marks
        frame-t pixels whose surface point is visible and inside frame t+1 (and back).
        """
        if self._flow is None:
            F, H, W = self.depth.shape
            fwd = np.zeros((F - 1, H, W, 2), np.float32)
            bwd = np.zeros_like(fwd)
            valid = np.zeros((F - 1, H, W), bool)
            for t in range(F - 1):
                fwd[t], ok_f = _exact_flow(self, t, t + 1)
                bwd[t], ok_b = _exact_flow(self, t + 1, t)
                valid[t] = ok_f & _sample_nearest(ok_b, fwd[t])
            self._flow = (fwd, bwd, valid)
        return self._flow

    def to_scene_record(self) -> SceneRecord:
        """The scene as the reconstruction stage would produce it, but exact (ground-truth depth and flow)."""
        fwd, bwd, valid = self.flow()
        return SceneRecord(
            frames=self.frames, depth=self.depth.astype(np.float32), K=self.K.astype(np.float32),
            camera_from_world=self.camera_from_world.astype(np.float32), moving=self.dynamic.copy(),
            flow_fwd=fwd.astype(np.float16), flow_bwd=bwd.astype(np.float16), flow_valid=valid, flow_stride=1,
            fps=float(self.fps), info={"source": "sample_scene", "kind": self.kind, "seed": self.seed,
                                       "depth": "ground truth", "flow": "ground truth"},
        )

    def mono_disparity(self) -> np.ndarray:
        """Simulated monocular depth network output: float16 [F, H, W], relative inverse depth in 0..1."""
        return _mono_disparity(self.depth, self.seed)

    def scene_json(self) -> dict:
        F, H, W = self.depth.shape
        return {
            "name": self.name, "fps": self.fps, "width": W, "height": H, "num_frames": F,
            "intrinsics": self.K.tolist(), "world_to_camera": self.camera_from_world.tolist(),
            "object_world_from_mesh": self.object_world_from_mesh.tolist(), "placement": self.placement,
            "description": self.description,
        } | ({} if self.K_per_frame is None else {"intrinsics_per_frame": self.K_per_frame.tolist()})

    def write_bundle(self, directory: str | Path) -> Path:
        """Write the scene bundle layout (docs/FORMATS.md) into `directory`; returns it."""
        from PIL import Image

        out = Path(directory)
        for sub in ("gt/visible", "gt/amodal", "gt/dynamic"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        write_mp4(out / "scene.mp4", self.frames, self.fps)
        write_mp4(out / "gt" / "composite.mp4", self.composite, self.fps)
        (out / "scene.json").write_text(json.dumps(self.scene_json(), indent=1))
        np.savez_compressed(out / "depth.npz", depth=self.depth.astype(np.float16))
        np.savez_compressed(out / "depth_mono.npz", disparity=self.mono_disparity())
        self.object_mesh.export(out / "object.ply")
        Image.fromarray(self.object_ref).save(out / "object_ref.png")
        Image.fromarray(self.object_ref_mask).save(out / "object_ref_mask.png")
        for name, masks in (("visible", self.gt_visible), ("amodal", self.gt_amodal), ("dynamic", self.dynamic)):
            for t, m in enumerate(masks):
                Image.fromarray((m * 255).astype(np.uint8)).save(out / "gt" / name / f"{t:05d}.png")
        return out


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


def _exact_flow(scene: SampleScene, ta: int, tb: int):
    """Flow [H, W, 2] from frame ta to tb and whether each point is seen (not occluded, in frame) in tb."""
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


def write_mp4(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Near-lossless H.264 (yuv420p) via PyAV; MPEG-4 Part 2 via OpenCV when PyAV has no H.264 encoder.

    frames: uint8 [F, H, W, 3] RGB.
    """
    import av

    try:
        av.codec.Codec("libx264", "w")
    except av.codec.codec.UnknownCodecError:
        import cv2

        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps),
                                 (frames.shape[2], frames.shape[1]))
        for f in frames:
            writer.write(np.ascontiguousarray(f[..., ::-1]))
        writer.release()
        return
    write_video(path, frames, fps, crf=10)


def _describe(kind: str, support: str, shape: str) -> str:
    if kind in SUITE_KINDS:
        from .suite_scenes import DESCRIPTIONS

        return DESCRIPTIONS[kind].format(s=support, o=shape)
    text = {
        "static": "Procedural room; the camera orbits; the {o} stands on the {s} and stays put.",
        "moving_support": "Procedural room; a tray slides and turns on the table while the camera dollies; "
                          "the {o} stands on the tray and moves with it.",
        "occluder": "Procedural room; the camera pans; a box-shaped walker crosses in front of the {o} "
                    "standing on the {s} (partial, then full occlusion).",
    }[kind]
    return text.format(s=support, o=shape)


def make_scene(kind: str = "static", num_frames: int = 17, width: int = 160, height: int = 96, seed: int = 0,
               fps: float = 16.0, object_shape: Optional[str] = None,
               progress: Optional[Progress] = None) -> SampleScene:
    """Render a sample scene with exact ground truth (deterministic for its arguments).

    kind: one of KINDS; object_shape: one of OBJECT_SHAPES, or None to let the seed choose.
    progress(done, total) is called after each frame.
    """
    if kind not in ALL_KINDS:
        raise InsertAnywhereError(f"Unknown sample scene kind '{kind}'; use one of {', '.join(ALL_KINDS)}.")
    if object_shape is not None and object_shape not in OBJECT_SHAPES:
        raise InsertAnywhereError(
            f"Unknown sample object shape '{object_shape}'; use one of {', '.join(OBJECT_SHAPES)} or leave it empty.")
    if num_frames < 2:
        raise InsertAnywhereError(f"num_frames={num_frames} is too small; a sample scene needs at least 2 frames.")
    if width < 32 or height < 32 or width % 2 or height % 2 or width > 4096 or height > 4096:
        raise InsertAnywhereError(
            f"Sample scene size {width}x{height} is not supported; use even sizes between 32 and 4096 "
            "(H.264 needs even sizes).")
    F, H, W = int(num_frames), int(height), int(width)
    rng = np.random.default_rng([int(seed), ALL_KINDS.index(kind)])

    shape = object_shape or str(rng.choice(OBJECT_SHAPES))
    mesh = _make_object_mesh(rng, shape)
    mesh_height = float(np.asarray(mesh.vertices)[:, 1].max())
    obj_height = rng.uniform(0.22, 0.34)
    scale = obj_height / mesh_height
    obj_radius = scale * float(np.linalg.norm(np.asarray(mesh.vertices)[:, [0, 2]], axis=1).max())

    if kind in KINDS:
        layout = _build_layout(kind, F, rng, obj_height, obj_radius)
    else:
        from .suite_scenes import build_layout

        layout = build_layout(kind, F, rng, obj_height, obj_radius, fps)
    world, cams = layout.world, layout.cams
    pose0 = _object_pose(rng, cams[0], layout.p0, scale)
    object_poses = layout.support_motion @ pose0
    K = np.array([[0.89 * W, 0.0, (W - 1) / 2.0], [0.0, 0.89 * W, (H - 1) / 2.0], [0.0, 0.0, 1.0]])
    Ks = _zoomed(K, layout.zoom, F)
    placement = derive_placement(pose0, mesh_height, _UP, cams[0], Ks[0])
    noise_rng = np.random.default_rng([int(seed), ALL_KINDS.index(kind), 1])

    frames = np.empty((F, H, W, 3), np.uint8)
    composite = np.empty_like(frames)
    depth = np.empty((F, H, W), np.float32)
    prim_img = np.empty((F, H, W), np.int16)
    local_img = np.empty((F, H, W, 3), np.float32)
    visible = np.empty((F, H, W), bool)
    amodal = np.empty((F, H, W), bool)
    mats = world.material_arrays()
    v_px, u_px = (g.reshape(-1) for g in np.mgrid[0:H, 0:W].astype(np.float64))
    salt, light = int(seed) * 13 + 5, layout.light
    for t in range(F):
        prim, z, local, color, points = _render_scene(world, mats, t, cams[t], Ks[t], u_px, v_px, salt, light)
        if layout.blur_cams is not None:  # the shutter stays open while the camera moves
            color = np.mean([_render_scene(world, mats, t, c, Ks[t], u_px, v_px, salt, light)[3]
                             for c in layout.blur_cams[t]], axis=0)
        color = color.reshape(H, W, 3)
        depth[t] = np.minimum(z, BACKGROUND_DEPTH).reshape(H, W)
        prim_img[t] = prim.reshape(H, W)
        local_img[t] = local.reshape(H, W, 3)

        obj_z, obj_rgb = _render_object(mesh, object_poses[t], cams[t], Ks[t], H, W, light)
        amodal[t] = np.isfinite(obj_z)
        visible[t] = amodal[t] & (obj_z < z.reshape(H, W))
        shadow = _contact_shadow(points, object_poses[t], obj_radius).reshape(H, W, 1)
        with_object = np.where(visible[t][..., None], obj_rgb, color * (1.0 - shadow))
        if layout.noise_std > 0:  # the same sensor noise on the input and on the target
            noise = noise_rng.normal(0.0, layout.noise_std, color.shape)
            color, with_object = np.clip(color + noise, 0.0, 1.0), np.clip(with_object + noise, 0.0, 1.0)
        frames[t] = _to_uint8(color)
        composite[t] = _to_uint8(with_object)
        report(progress, t + 1, F)

    ref, ref_mask = _render_reference(mesh)
    support_name = world.names[layout.support_pid].replace("_top", "")
    return SampleScene(
        kind=kind, seed=int(seed), name=f"sample_{kind}_{seed}", description=_describe(kind, support_name, shape),
        fps=float(fps), frames=frames, depth=depth, K=Ks[0].copy(), camera_from_world=cams,
        dynamic=world.dynamic[prim_img], object_mesh=mesh, object_ref=ref, object_ref_mask=ref_mask,
        placement=placement, object_world_from_mesh=object_poses, gt_visible=visible, gt_amodal=amodal,
        composite=composite, surface_normal=_UP.copy(), world=world, hit_prim=prim_img, hit_local=local_img,
        K_per_frame=None if layout.zoom is None else Ks,
    )


def _zoomed(K: np.ndarray, zoom: Optional[np.ndarray], num_frames: int) -> np.ndarray:
    """Per-frame K [F, 3, 3]: K with its focal lengths times zoom[t] (the same K without zoom)."""
    if zoom is None:
        return np.broadcast_to(K, (num_frames, 3, 3))
    Ks = np.repeat(K[None], num_frames, axis=0)
    Ks[:, 0, 0] *= zoom
    Ks[:, 1, 1] *= zoom
    return Ks


def _to_uint8(color: np.ndarray) -> np.ndarray:
    return (color * 255 + 0.5).astype(np.uint8)


def _object_pose(rng: np.random.Generator, camera_from_world0: np.ndarray, p0: np.ndarray, scale: float):
    """The object's true frame-0 pose [4, 4]: upright on the support at p0, facing roughly (not exactly)
    the first camera (10-40 degrees off)."""
    to_cam = -camera_from_world0[:3, :3].T @ camera_from_world0[:3, 3] - p0
    heading = math.atan2(to_cam[1], to_cam[0]) + math.radians(rng.choice([-1, 1]) * rng.uniform(10, 40))
    front = np.array([math.cos(heading), math.sin(heading), 0.0])
    return make_pose(np.stack([np.cross(_UP, front), _UP, front], axis=1), p0, scale)


def _render_scene(world: _World, mats: dict, t: int, camera_from_world: np.ndarray, K: np.ndarray,
                  u: np.ndarray, v: np.ndarray, salt: int, light: _Light = _DEFAULT_LIGHT):
    """Ray-cast and shade pixels (u, v) [N] of frame t.

    Returns prim [N], depth [N], local [N, 3] (hit in the prim's frame), colour [N, 3] in 0..1,
    world points [N, 3].
    """
    prim, z, local, n_local, eye, dirs = _raycast(world, t, camera_from_world, K, u, v)
    n_world = _per_prim(world.poses[:, t], prim, n_local, rotate_only=True)
    ray_len = np.sqrt(dirs[:, 0] ** 2 + dirs[:, 1] ** 2 + dirs[:, 2] ** 2)
    facing = np.abs(n_world[:, 0] * dirs[:, 0] + n_world[:, 1] * dirs[:, 1] + n_world[:, 2] * dirs[:, 2]) / ray_len
    footprint = z * ray_len / K[0, 0] / np.maximum(facing, 0.2)  # pixel size on the surface, metres
    color = _shade(prim, local, n_local, n_world, footprint, mats, salt, light)
    return prim, z, local, color, eye + z[:, None] * dirs


def _contact_shadow(points: np.ndarray, world_from_mesh: np.ndarray, foot_radius: float) -> np.ndarray:
    """Soft darkening [N] in 0..0.5 of scene points near the object's base (a blob shadow)."""
    scale = float(np.linalg.norm(world_from_mesh[:3, 0]))
    R = world_from_mesh[:3, :3] / scale
    q = _rotate(points - world_from_mesh[:3, 3], R.T)  # world-unit offsets in the object's axes
    radial2 = (q[:, 0] ** 2 + q[:, 2] ** 2) / (1.3 * foot_radius) ** 2
    near = np.clip(1.0 - np.abs(q[:, 1]) / (0.05 + 0.2 * foot_radius), 0.0, 1.0)
    return 0.5 * np.exp(-radial2) * near


def write_triangle_soup(path, faces: int, spread: Optional[float] = None, seed: int = 0) -> Path:
    """A binary STL triangle soup (the hostile mesh of issue #11): `faces` triangles, each with its
    own 3 corners, in a unit cube. spread = std of the corners around each triangle's centre (small:
    little triangles all over); None = every corner anywhere (large overlapping triangles)."""
    rng = np.random.default_rng(seed)
    if spread is None:
        corners = rng.uniform(0, 1, (faces, 3, 3))
    else:
        corners = rng.uniform(0, 1, (faces, 1, 3)) + rng.normal(0, spread, (faces, 3, 3))
    record = np.zeros(faces, [("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attr", "<u2")])
    record["corners"] = corners
    path = Path(path)
    path.write_bytes(b"triangle soup".ljust(80, b" ") + np.uint32(faces).tobytes() + record.tobytes())
    return path
