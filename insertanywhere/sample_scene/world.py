"""The scene model of the sample scenes: materials, lights and the analytic world (a room box plus
oriented boxes with per-frame poses), and the builder the layouts fill.

World frame: +Z up, metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from ..masks.geometry import make_pose, rot_z

_UP = np.array([0.0, 0.0, 1.0])
_LIGHT = np.array([0.35, -0.55, 0.76]) / np.linalg.norm([0.35, -0.55, 0.76])
_NEAR = 1e-3


class _Light(NamedTuple):
    """Lambert lighting: unit direction [3] towards the light; (ambient, diffuse) for the scene and the object."""

    direction: np.ndarray
    scene: tuple = (0.55, 0.45)
    obj: tuple = (0.5, 0.5)


_DEFAULT_LIGHT = _Light(_LIGHT)


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
