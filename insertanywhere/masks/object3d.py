"""Object to 3D: turn a mesh file or a reference image + mask into a coloured 3D object.

Every object lives in one canonical frame (the glTF convention; docs/FORMATS.md):
+Y up, +Z is the object's front, base at y = 0, the footprint's bounding box centred on
x = z = 0, and the object is exactly 1 unit tall. The placement later scales it to its
real height. With all placement angles 0 the object faces the camera, so canonical +X
points to the image's right.

Shapes: vertices float32 [V, 3], faces int32 [M, 3] (None for a bare point cloud),
colors uint8 [V, 3] RGB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InsertAnywhereError

MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".stl")
DEFAULT_COLOR = (160, 160, 160)
# Image-derived objects are meshed on a grid at most this many cells tall/wide.
IMAGE_GRID_CELLS = 128
# Textured meshes are subdivided until edges are at most this fraction of the height,
# so per-vertex texture samples carry the texture's detail.
TEXTURE_EDGE = 1.0 / 48
MAX_SUBDIVIDED_FACES = 200_000
# Face budget (triangles) of a loaded mesh; more are simplified on load by vertex clustering.
# Why: every frame rasterises every triangle (~0.1 us per pixel test plus a per-triangle setup,
# docs/BENCHMARK.md), and a triangle soup of large overlapping triangles tests each pixel once
# per triangle over it; at this budget an object a few hundred pixels tall renders in well under
# a second per frame, and finer meshes only add triangles smaller than a pixel.
# Change it with the node's max_faces or the CLI's --max-faces.
MAX_FACES = 50_000
# Layer budget: a mesh's total triangle area over its bounding box's largest face. Each frame
# tests every covered pixel once per layer over it; a closed shape has ~3-6, a leafy plant tens,
# a soup of large overlapping triangles thousands (seconds to minutes per frame). Over this the
# mesh is simplified like one over the face budget.
MAX_LAYERS = 100.0
MIN_FACES = 100  # a smaller budget leaves no recognisable shape
CLUSTER_MAX_CELLS = 4096  # finest simplification grid, cells along the object's longest side


@dataclass
class Object3D:
    """A coloured object in the canonical unit-height frame.

    vertices float32 [V, 3]; faces int32 [M, 3] or None (point cloud, rendered as splats);
    colors uint8 [V, 3]; object_from_source float64 [4, 4] maps the source file's (mesh)
    coordinates to canonical ones (identity for image-derived objects).
    """

    vertices: np.ndarray
    faces: Optional[np.ndarray]
    colors: np.ndarray
    object_from_source: np.ndarray = field(default_factory=lambda: np.eye(4))
    source: str = ""
    warnings: list[str] = field(default_factory=list)  # for the user, e.g. the mesh was simplified

    def __post_init__(self) -> None:
        """Shapes as in the class doc; ValueError names the first field that is off."""
        V = len(self.vertices)
        expected = {"vertices": ((V, 3), np.floating), "colors": ((V, 3), np.uint8),
                    "object_from_source": ((4, 4), np.floating)}
        if self.faces is not None:
            expected["faces"] = ((len(self.faces), 3), np.integer)
        for name, (shape, kind) in expected.items():
            value = np.asarray(getattr(self, name))
            if value.shape != shape or not np.issubdtype(value.dtype, kind):
                raise ValueError(f"Object3D.{name} is {value.dtype} {value.shape}, expected {shape} {kind.__name__}")

    @property
    def is_mesh(self) -> bool:
        return self.faces is not None and len(self.faces) > 0

    def point_spacing(self) -> float:
        """Typical distance between neighbouring vertices (canonical units), for splat sizes."""
        from scipy.spatial import cKDTree

        pts = self.vertices
        if len(pts) > 20000:
            pts = pts[np.random.default_rng(0).choice(len(pts), 20000, replace=False)]
        dist, _ = cKDTree(pts).query(pts, k=2)
        return float(np.median(dist[:, 1]))


def normalise_vertices(vertices: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Move the base to y = 0, centre the footprint's bbox on x = z = 0, scale to unit height.

    vertices [V, 3] -> (canonical vertices float32 [V, 3], object_from_source [4, 4]).
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 3:
        raise InsertAnywhereError(f"{what} has {len(v)} points; a 3D object needs at least 3. Use another file.")
    if not np.isfinite(v).all():
        raise InsertAnywhereError(f"{what} has NaN or infinite coordinates; repair or re-export the file.")
    lo, hi = v.min(axis=0), v.max(axis=0)
    height = hi[1] - lo[1]
    extent = float((hi - lo).max())
    if extent <= 0 or height <= 1e-6 * extent:
        raise InsertAnywhereError(
            f"{what} has no height along +Y (size {hi - lo}); the canonical frame is +Y up. "
            "Re-export it with +Y up (glTF convention)."
        )
    scale = 1.0 / height
    shift = -np.array([(lo[0] + hi[0]) / 2, lo[1], (lo[2] + hi[2]) / 2])
    matrix = np.eye(4)
    matrix[:3, :3] *= scale
    matrix[:3, 3] = scale * shift
    return ((v + shift) * scale).astype(np.float32), matrix


def load_mesh(path: str | Path, max_faces: int = MAX_FACES) -> Object3D:
    """Load .glb/.gltf/.obj/.ply/.stl with trimesh, sampling textures / vertex colours.

    Scenes are flattened with their node transforms. A file without faces is a point cloud.
    Meshes with more than max_faces triangles are simplified (see simplify_mesh).
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise InsertAnywhereError(f"Object mesh '{path}' does not exist; check the path.")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InsertAnywhereError(
            f"Object mesh '{path.name}' has an unsupported type; use one of {', '.join(MESH_SUFFIXES)}."
        )
    try:
        loaded = trimesh.load(str(path), process=False)
    except Exception as exc:  # trimesh raises many types for broken files
        raise InsertAnywhereError(f"Cannot read mesh '{path}': {exc}. Re-export it.") from exc
    return object_from_trimesh(loaded, path.name, source=str(path), max_faces=max_faces)


def object_from_trimesh(loaded, name: str = "mesh", source: str = "", max_faces: int = MAX_FACES) -> Object3D:
    """An Object3D from an in-memory trimesh Trimesh / PointCloud / Scene (see load_mesh)."""
    import trimesh

    max_faces = check_max_faces(max_faces)
    parts = loaded.dump() if isinstance(loaded, trimesh.Scene) else [loaded]
    vertices, faces, colors = [], [], []
    offset = 0
    for part in parts:
        if isinstance(part, trimesh.Trimesh) and len(part.faces):
            part = _densify_texture(part, max_faces)
            vertices.append(np.asarray(part.vertices))
            faces.append(np.asarray(part.faces) + offset)
            colors.append(_vertex_colors(part))
        elif isinstance(part, trimesh.PointCloud) and len(part.vertices):
            vertices.append(np.asarray(part.vertices))
            colors.append(_point_colors(part))
        else:
            continue
        offset += len(vertices[-1])
    if not vertices:
        raise InsertAnywhereError(f"Mesh '{name}' holds no triangles or points; use a non-empty mesh.")
    if faces and len(faces) != len(vertices):
        raise InsertAnywhereError(f"Mesh '{name}' mixes triangles and bare points; export only the mesh.")
    canon, matrix = normalise_vertices(np.concatenate(vertices), f"Mesh '{name}'")
    tri = np.concatenate(faces).astype(np.int32) if faces else None
    colors = np.concatenate(colors)
    warnings: list[str] = []
    if tri is not None:
        tri = _drop_degenerate(canon, tri, name)
        before, layers = len(tri), mesh_layers(canon, tri)
        if before > max_faces or layers > MAX_LAYERS:
            canon, tri, colors = simplify_mesh(canon, tri, colors, max_faces)
            canon, again = normalise_vertices(canon, f"Mesh '{name}'")  # merged corners moved: unit height again
            matrix = again @ matrix
            if before > max_faces:
                why, fix = (f"over the face budget of {max_faces}",
                            "Raise max_faces (node) / --max-faces (CLI) to keep more detail.")
            else:
                why, fix = (f"stacked {layers:.0f} deep over the object (over {MAX_LAYERS:.0f}: large overlapping "
                            "triangles, not a surface)", "Re-export the object as a surface mesh.")
            warnings = [
                f"Mesh '{name}' has {before} triangles {why}; simplified to {len(tri)} for rendering speed. {fix}"]
    return Object3D(canon, tri, colors, matrix, source=source or name, warnings=warnings)


def check_max_faces(max_faces) -> int:
    """The face budget as a positive int, or a clear error."""
    if isinstance(max_faces, bool) or not isinstance(max_faces, (int, np.integer)) or max_faces < MIN_FACES:
        raise InsertAnywhereError(
            f"The face budget max_faces is {max_faces!r}; give a whole number of triangles, at least {MIN_FACES} "
            f"(default {MAX_FACES}).")
    return int(max_faces)


def mesh_layers(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Total triangle area over the area of the bounding box's largest face (see MAX_LAYERS)."""
    tri = vertices[faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    size = np.sort(vertices.max(0) - vertices.min(0)).astype(np.float64)
    return float(area / max(size[1] * size[2], 1e-12))


def simplify_mesh(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray,
                  max_faces: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most max_faces triangles and MAX_LAYERS layers (mesh_layers) by vertex clustering:
    vertices [V, 3] are merged per cell of a cubic grid (position and colour averaged),
    triangles whose corners fall in fewer than three cells are dropped, duplicates kept once.
    The grid is the finest (binary search on its cells per side) that meets both budgets.
    Exact duplicate vertices (a triangle soup, as STL stores every mesh) are merged first, so
    shared corners stay shared.

    vertices float32 [V, 3], faces int [M, 3], colors uint8 [V, 3] -> the same, simplified.
    """
    vertices, faces, colors = _merge_duplicates(vertices, faces, colors)
    faces = _unique_faces(faces)

    def fits(mesh) -> bool:
        return 0 < len(mesh[1]) <= max_faces and mesh_layers(mesh[0], mesh[1]) <= MAX_LAYERS

    if fits((vertices, faces)):
        return vertices, faces.astype(np.int32), colors
    best = None
    low, high = 1, CLUSTER_MAX_CELLS  # cells along the longest side
    while low <= high:
        cells = (low + high) // 2
        if fits(_cluster(vertices, faces, None, cells)):
            best, low = cells, cells + 1
        else:
            high = cells - 1
    if best is None:
        raise InsertAnywhereError(
            f"The mesh cannot be simplified to {max_faces} triangles and {MAX_LAYERS:.0f} layers and keep any; "
            "it is not a surface. Re-export the object as a mesh.")
    return _cluster(vertices, faces, colors, best)


def _cluster(vertices, faces, colors, cells: int):
    """Vertex clustering on a grid of `cells` cells along the longest side (see simplify_mesh)."""
    lo = vertices.min(0)
    extent = max(float((vertices.max(0) - lo).max()), 1e-12)
    cell = np.floor((vertices - lo) * (cells / extent)).astype(np.int64).clip(0, cells - 1)
    key = (cell[:, 0] * cells + cell[:, 1]) * cells + cell[:, 2]
    _, label = np.unique(key, return_inverse=True)
    label = label.reshape(-1)
    clustered = _unique_faces(label[faces])
    count = np.bincount(label).astype(np.float64)[:, None]
    points = np.stack([np.bincount(label, vertices[:, i]) for i in range(3)], 1) / count
    used = np.zeros(len(count), bool)  # clusters some triangle uses
    used[clustered.ravel()] = True
    remap = np.cumsum(used) - 1
    if colors is not None:
        rgb = np.stack([np.bincount(label, colors[:, i].astype(np.float64)) for i in range(3)], 1) / count
        colors = np.clip(np.round(rgb[used]), 0, 255).astype(np.uint8)
    return points[used].astype(np.float32), remap[clustered].astype(np.int32), colors


def _merge_duplicates(vertices, faces, colors):
    """Vertices at exactly the same position become one (the first one's colour)."""
    rows = np.ascontiguousarray(vertices).view(np.dtype((np.void, vertices.dtype.itemsize * 3))).ravel()
    _, first, label = np.unique(rows, return_index=True, return_inverse=True)
    return vertices[first], label.reshape(-1)[faces], colors[first]


def _unique_faces(faces: np.ndarray) -> np.ndarray:
    """Triangles with three distinct corners, each corner set once (first winding kept)."""
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    if not len(faces):
        return faces
    corners = np.sort(faces, axis=1).astype(np.int64)
    n = int(corners.max()) + 1  # < 2**21 vertices keep the key inside int64
    key = (corners[:, 0] * n + corners[:, 1]) * n + corners[:, 2] if n < 2 ** 21 else corners
    _, first = np.unique(key, axis=0 if key.ndim > 1 else None, return_index=True)
    return faces[np.sort(first)]


def _densify_texture(mesh, max_faces: int = MAX_FACES):
    """Subdivide a textured mesh so its vertex colours follow the texture (up to the face budget)."""
    from trimesh.visual import TextureVisuals

    if not isinstance(mesh.visual, TextureVisuals) or mesh.visual.uv is None:
        return mesh
    height = max(float(np.ptp(mesh.vertices[:, 1])), 1e-9)
    while (len(mesh.faces) * 4 <= min(MAX_SUBDIVIDED_FACES, max_faces)
           and mesh.edges_unique_length.max() > TEXTURE_EDGE * height):
        mesh = mesh.subdivide()
    return mesh


def _vertex_colors(mesh) -> np.ndarray:
    try:
        visual = mesh.visual
        if visual.kind == "texture":
            visual = visual.to_color()
        if visual.kind in ("vertex", "face"):
            return np.asarray(visual.vertex_colors)[:, :3].astype(np.uint8)
    except Exception:  # a broken texture falls back to grey, the geometry is still usable
        pass
    return np.tile(np.array(DEFAULT_COLOR, np.uint8), (len(mesh.vertices), 1))


def _point_colors(cloud) -> np.ndarray:
    colors = np.asarray(cloud.colors) if cloud.colors is not None else np.empty((0, 4))
    if len(colors) == len(cloud.vertices):
        return colors[:, :3].astype(np.uint8)
    return np.tile(np.array(DEFAULT_COLOR, np.uint8), (len(cloud.vertices), 1))


def _drop_degenerate(vertices: np.ndarray, faces: np.ndarray, name: str) -> np.ndarray:
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InsertAnywhereError(f"Mesh '{name}' has face indices outside its vertex list; re-export it.")
    tri = vertices[faces].astype(np.float64)
    area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    keep = area > 1e-12
    if not keep.any():
        raise InsertAnywhereError(f"Mesh '{name}' has only zero-area triangles; use a real 3D mesh.")
    return faces[keep]


def object_from_image(image: np.ndarray, mask: np.ndarray, depth: Optional[np.ndarray] = None,
                      disparity: Optional[np.ndarray] = None) -> Object3D:
    """A closed relief mesh from a front view.

    image uint8 [H, W, 3] RGB; mask [H, W] (bool or 0..255, object where > 0.5 / 127);
    optional relief source [H, W], at most one: depth (near = small, any monotone scale) or
    disparity (near = large, e.g. a depth node's bright-is-near image).
    The silhouette is meshed at pixel corners; the front surface bulges towards +Z by a
    rounded profile of the mask (a dome over the distance transform, as deep as the
    shape's inscribed radius) or, with depth, by the depth's relief scaled to that same
    range; the back is the mirror image, so the object has volume seen from the side.
    """
    mask = _binary_mask(mask, image)
    if depth is not None and disparity is not None:
        raise InsertAnywhereError("Give the object's depth or its disparity, not both.")
    if disparity is not None:
        depth = -_check_depth(disparity, mask)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop_mask = mask[y0:y1, x0:x1]
    crop_img = np.asarray(image)[y0:y1, x0:x1, :3]
    crop_depth = None if depth is None else _check_depth(depth, mask)[y0:y1, x0:x1]
    crop_mask, crop_img, crop_depth = _to_grid(crop_mask, crop_img, crop_depth)
    relief = _relief(crop_mask, crop_depth)
    corner_relief, corner_color, corner_used = _corner_values(crop_mask, crop_img, relief)
    h, w = crop_mask.shape
    index = -np.ones((h + 1, w + 1), np.int64)
    index[corner_used] = np.arange(corner_used.sum())
    cy, cx = np.nonzero(corner_used)
    front = np.stack([cx.astype(np.float64), (h - cy).astype(np.float64), corner_relief[corner_used]], axis=1)
    back = front * np.array([1.0, 1.0, -1.0])
    py, px = np.nonzero(crop_mask)
    a, b = index[py, px], index[py, px + 1]
    c, d = index[py + 1, px + 1], index[py + 1, px]
    # Front faces wind counter-clockwise seen from +Z (image y points down, canonical y up).
    front_faces = np.concatenate([np.stack([a, d, c], 1), np.stack([a, c, b], 1)])
    n = len(front)
    back_faces = front_faces[:, ::-1] + n
    vertices = np.concatenate([front, back])  # relief is in pixel units, like x and y
    canon, _ = normalise_vertices(vertices, "The object mask")
    colors = np.concatenate([corner_color[corner_used]] * 2)
    faces = np.concatenate([front_faces, back_faces]).astype(np.int32)
    return Object3D(canon, faces, colors, np.eye(4), source="image")


def _binary_mask(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[2] < 3:
        raise InsertAnywhereError(f"The object image must be RGB [H, W, 3], got shape {image.shape}.")
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape != image.shape[:2]:
        raise InsertAnywhereError(
            f"The object mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}; give a mask of the same size."
        )
    threshold = 127 if mask.dtype == np.uint8 else 0.5
    binary = mask > threshold
    if binary.sum() < 16:
        raise InsertAnywhereError(
            f"The object mask covers {int(binary.sum())} pixels; paint the object white (255) on black."
        )
    return binary


def _check_depth(depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth, dtype=np.float64)
    if depth.shape != mask.shape:
        raise InsertAnywhereError(
            f"The object depth is {depth.shape} but the mask is {mask.shape}; give one of the same size."
        )
    if not np.isfinite(depth[mask]).all():
        raise InsertAnywhereError("The object depth has NaN/inf inside the mask; fill it before use.")
    return depth


def _to_grid(mask, image, depth):
    """Resize the crop so its longer side is at most IMAGE_GRID_CELLS cells."""
    import cv2

    h, w = mask.shape
    scale = min(1.0, IMAGE_GRID_CELLS / max(h, w))
    if scale >= 1.0:
        return mask, image, depth
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    image = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
    if depth is not None:
        depth = cv2.resize(depth.astype(np.float32), size, interpolation=cv2.INTER_AREA).astype(np.float64)
    if mask.sum() < 4:
        raise InsertAnywhereError("The object mask is too thin to mesh; give a larger, solid mask.")
    return mask, image, depth


def _relief(mask: np.ndarray, depth: Optional[np.ndarray]) -> np.ndarray:
    """Per-pixel bulge towards +Z [h, w], in pixel units, 0 outside the mask."""
    import cv2

    padded = np.pad(mask, 1).astype(np.uint8)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1].astype(np.float64)
    radius = max(float(dist.max()), 1.0)
    if depth is None:
        # Circular cross-section at the local thickness: a round stalk is as deep as it is
        # wide, a disc as deep as its radius; vertical at the silhouette.
        local = _local_radius(dist)
        return np.sqrt(np.clip(local ** 2 - (local - np.minimum(dist, local)) ** 2, 0, None)) * mask
    near, far = np.percentile(depth[mask], [2, 98])
    rel = np.clip((far - depth) / max(far - near, 1e-9), 0, 1)
    # Fade to 0 at the silhouette so front and back meet there.
    edge = np.clip(dist / max(2.0, 0.1 * radius), 0, 1)
    return radius * rel * edge * mask


def _local_radius(dist: np.ndarray) -> np.ndarray:
    """Local thickness [h, w]: radius of the largest inscribed disc covering each pixel
    (on ~16 geometric radius levels), from the distance transform."""
    import cv2

    local = np.zeros_like(dist)
    for r in np.unique(np.geomspace(1.0, max(float(dist.max()), 1.0), 16)):
        size = 2 * int(np.ceil(r)) + 1
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        covered = cv2.dilate((dist >= r).astype(np.uint8), disc).astype(bool)
        local[covered] = r
    return np.maximum(local, 1.0)


def _corner_values(mask, image, relief):
    """Average pixel values onto the (h+1, w+1) pixel-corner grid."""
    m = mask.astype(np.float64)

    def corner_sum(a):
        p = np.pad(a, [(1, 1), (1, 1)] + [(0, 0)] * (a.ndim - 2))
        return p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]

    count = corner_sum(m)
    used = count > 0
    full = count >= 4  # corners inside the silhouette keep their relief; rim corners get 0
    rel = np.where(full, corner_sum(relief * m) / np.maximum(count, 1), 0.0)
    col = corner_sum(image.astype(np.float64) * m[..., None]) / np.maximum(count, 1)[..., None]
    return rel, np.clip(np.round(col), 0, 255).astype(np.uint8), used
