"""The inserted object: a lathe vase with a handle or a lidded box, a trimesh mesh with vertex colours."""

from __future__ import annotations

import numpy as np

from .textures import _hsv

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
