"""Layouts of the basic sample-scene kinds (KINDS): the room, furniture, the object's support, the camera
path and the walker; and the pieces the suite's layouts (suite.py) reuse.

  static          the object stands on static ground (floor or table); the camera orbits.
  moving_support  the object stands on a tray that slides and turns; the camera dollies.
  occluder        a box-shaped walker crosses in front of the object; the camera pans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..masks.geometry import invert_rigid, rot_z
from .raster import _look_at
from .textures import _hsv
from .world import _DEFAULT_LIGHT, _UP, _Light, _Material, _pose_z, _smoothstep, _World, _WorldBuilder

KINDS = ("static", "moving_support", "occluder")
_WALKER_HEIGHT = 2.1
_WALKER_DEPTH = 0.08  # half depth


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
