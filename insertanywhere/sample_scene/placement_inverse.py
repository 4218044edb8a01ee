"""The placement JSON (docs/FORMATS.md) of a known frame-0 object pose: its rules inverted."""

from __future__ import annotations

import math

import numpy as np

from ..masks.geometry import rot_y

TOP_K = 64


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
