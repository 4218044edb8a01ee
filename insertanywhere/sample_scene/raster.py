"""The triangle rasteriser that draws the object (z-buffered, perspective-correct), and its reference picture."""

from __future__ import annotations

import math

import numpy as np

from ..masks.geometry import make_pose
from .world import _DEFAULT_LIGHT, _NEAR, _Light

REF_SIZE = 256


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
