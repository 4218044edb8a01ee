"""Layouts of the held-out suite's sample-scene kinds (SUITE_KINDS).

Each kind is one hard case for the mask pipeline; everything else (room size and textures, the
furniture, the support, object shape and size, camera distance and direction, speeds, occluder
sizes and timing, lighting) is drawn from the seed, so every seed is a different scene of that kind.
The rendering and the exact ground truth are `make_scene`'s (scene.py); this module only says
where things are and how they move.

  orbit               the camera orbits the object (25-45 degrees over the clip).
  pan                 the camera turns on the spot (a slow pan; the object drifts across the view).
  walk_forward        the camera walks towards the object (30-45% of the distance) and turns slightly.
  handheld            a small orbit with hand shake (1-4 Hz wobble of position, aim and roll).
  zoom                the focal length changes 1.5-1.9x over the clip (zoom in or out), K per frame.
  one_occluder        a box-shaped walker crosses in front of the object.
  crossing_occluders  2-3 walkers cross at different times and depths.
  occluder_stops      a walker stops in front of the object for a quarter to two fifths of the clip.
  sliding_support     a board on the table starts sliding at a random time (no turn).
  turntable           a board on the table turns about its centre (60-150 degrees), the object off-centre.
  carried             a board is lifted off the table and carried aside, the object on it.
  low_texture         the object stands on a plain floor (almost no texture).
  noise_blur          a fast handheld orbit with motion blur (sub-frame cameras) and strong sensor noise.
"""

from __future__ import annotations

import math

import numpy as np

from ..masks.geometry import invert_rigid, make_pose, rot_z
from .layouts import _WALKER_DEPTH, _add_decor, _add_room, _add_support, _clearance, _Layout, _palette
from .raster import _look_at
from .world import _UP, _Light, _Material, _pose_z, _smoothstep, _WorldBuilder

SUITE_KINDS = ("orbit", "pan", "walk_forward", "handheld", "zoom", "one_occluder", "crossing_occluders",
               "occluder_stops", "sliding_support", "turntable", "carried", "low_texture", "noise_blur")  # append only
DESCRIPTIONS = {
    "orbit": "Procedural room; the camera orbits; the {o} stands on the {s} and stays put.",
    "pan": "Procedural room; the camera pans slowly; the {o} stands on the {s}.",
    "walk_forward": "Procedural room; the camera walks towards the {o} on the {s} and turns slightly.",
    "handheld": "Procedural room; a shaky handheld camera; the {o} stands on the {s}.",
    "zoom": "Procedural room; the camera zooms (the focal length changes per frame); the {o} stands on the {s}.",
    "one_occluder": "Procedural room; a walker crosses in front of the {o} standing on the {s}.",
    "crossing_occluders": "Procedural room; walkers cross in front of the {o} on the {s}, at different times "
                          "and depths.",
    "occluder_stops": "Procedural room; a walker stops in front of the {o} on the {s} for a while, then leaves.",
    "sliding_support": "Procedural room; a board starts sliding on the table; the {o} stands on it.",
    "turntable": "Procedural room; a board turns on the table like a turntable; the {o} stands on it, off-centre.",
    "carried": "Procedural room; a board is lifted off the table and carried aside with the {o} on it.",
    "low_texture": "Procedural room with a plain, almost textureless floor; the {o} stands on it.",
    "noise_blur": "Procedural room; a fast handheld camera with motion blur and strong sensor noise; "
                  "the {o} stands on the {s}.",
}

# kind: (camera motion, support choices, walker plan)
_RECIPES = {
    "orbit": ("orbit", ("floor", "table", "crate"), None),
    "pan": ("pan", ("floor", "table", "crate"), None),
    "walk_forward": ("forward", ("floor", "crate"), None),
    "handheld": ("handheld", ("floor", "table", "crate"), None),
    "zoom": ("zoom", ("floor", "table", "crate"), None),
    "one_occluder": ("slow", ("floor", "crate"), "one"),
    "crossing_occluders": ("slow", ("floor", "crate"), "crossing"),
    "occluder_stops": ("slow", ("floor", "crate"), "stops"),
    "sliding_support": ("dolly", ("sliding",), None),
    "turntable": ("dolly", ("turntable",), None),
    "carried": ("dolly", ("carried",), None),
    "low_texture": ("slow", ("floor",), None),
    "noise_blur": ("blur", ("floor", "table", "crate"), None),
}
WALK_SPEED = (0.8, 1.4)  # m/s, a walking person
BLUR_SAMPLES = 5  # sub-frame renders averaged per blurred frame
MAX_LAM = 0.6  # a walker crosses at most this fraction of the way from the object to the camera


def build_layout(kind: str, F: int, rng: np.random.Generator, obj_height: float, obj_radius: float,
                 fps: float) -> _Layout:
    """The suite kind's room, support, camera path, walkers, lighting and image degradation."""
    motion, supports, walkers = _RECIPES[kind]
    wb = _WorldBuilder(F)
    tau = np.linspace(0.0, 1.0, F)
    room_lo, room_hi, face_ids = _add_room(wb, rng)
    if kind == "low_texture":
        floor = wb.materials[int(face_ids[4])]
        wb.materials[int(face_ids[4])] = _Material(floor.color_a, floor.color_a, freq=(2, 2, 2), contrast=0.03)
    side = rng.choice([-1.0, 1.0])
    _add_decor(wb, rng, room_lo, room_hi, side)
    support = str(rng.choice(supports))
    board = {"sliding": _sliding_board, "turntable": _turntable_board, "carried": _carried_board}.get(support)
    pid, p0, support_motion = _add_support("board" if board else support, wb, rng, tau, side, int(face_ids[4]),
                                           obj_radius, board)
    path = _CameraPath(motion, rng, p0, obj_height, F, fps, room_hi[2])
    cams, zoom = path.at(tau)
    if walkers is not None:
        _add_walkers(walkers, wb, rng, cams, p0, obj_radius, _clearance(wb.names[pid]), fps)
    light = _random_light(rng)
    blur_cams, noise_std = None, 0.0
    if kind == "noise_blur":
        shutter = rng.uniform(0.5, 1.0) / max(F - 1, 1)  # open for half to all of a frame interval
        offsets = (np.arange(BLUR_SAMPLES) / (BLUR_SAMPLES - 1) - 0.5) * shutter
        blur_cams = np.stack([path.at(tau + o)[0] for o in offsets], axis=1)
        noise_std = rng.uniform(0.025, 0.05)  # 6-13 grey levels of 255
    return _Layout(wb.build(room_lo, room_hi, face_ids), pid, p0, cams, support_motion,
                   zoom=None if kind != "zoom" else zoom, light=light, blur_cams=blur_cams, noise_std=noise_std)


def _random_light(rng: np.random.Generator) -> _Light:
    """Light from a random side, 35-75 degrees up; random ambient share and exposure."""
    az, el = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(35, 75))
    direction = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    exposure = rng.uniform(0.8, 1.15)
    ambient = rng.uniform(0.4, 0.65)
    obj_ambient = rng.uniform(0.4, 0.6)
    return _Light(direction, (ambient * exposure, (1.0 - ambient) * exposure),
                  (obj_ambient * exposure, (1.0 - obj_ambient) * exposure))


# ----------------------------------------------------------------------------- the camera


class _CameraPath:
    """A camera path with its parameters drawn once, evaluated at any clip time tau in [0, 1]
    (sub-frame times give motion blur). Cameras look at the object from the room's -y side."""

    def __init__(self, motion: str, rng: np.random.Generator, p0: np.ndarray, obj_height: float, F: int,
                 fps: float, ceiling: float):
        self.motion, self.seconds = motion, (F - 1) / fps
        # object height / image height in frame 0 (focal = 0.89 W, W / H = 5 / 3, so f / H = 1.48)
        frac = {"forward": (0.14, 0.18), "zoom": (0.13, 0.17), "dolly": (0.17, 0.22)}.get(motion, (0.2, 0.28))
        self.dist = obj_height * 1.48 / rng.uniform(*frac)
        self.target = p0 + _UP * (0.5 * obj_height)
        top = ceiling - 0.3 - self.target[2]  # keep the camera inside the room
        self.elev = math.radians(min(rng.uniform(20, 34), math.degrees(math.asin(min(1.0, top / self.dist)))))
        self.az0 = math.radians(-90 + rng.uniform(-20, 20))
        self.lateral = np.array([-math.sin(self.az0), math.cos(self.az0), 0.0])
        self.target = self.target + self.lateral * self.dist * rng.uniform(-0.1, 0.1)
        self.sgn = rng.choice([-1.0, 1.0])
        self.sweep = math.radians({"orbit": rng.uniform(25, 45), "handheld": rng.uniform(4, 10),
                                   "zoom": rng.uniform(0, 8), "dolly": rng.uniform(6, 12), "slow": rng.uniform(6, 16),
                                   "blur": rng.uniform(40, 60)}.get(motion, 0.0))
        self.pan = rng.uniform(0.25, 0.4) if motion == "pan" else 0.0  # of the distance, aim moved sideways
        self.walk = rng.uniform(0.3, 0.45) if motion == "forward" else 0.0  # of the distance, walked
        self.turn = rng.uniform(0.05, 0.15) if motion == "forward" else 0.0
        self.push = rng.uniform(0.1, 0.2) if motion == "dolly" else 0.0
        self.zoom_span = (rng.uniform(1.5, 1.9), rng.choice([-1.0, 1.0])) if motion == "zoom" else None
        shaky = motion in ("handheld", "blur")
        # hand shake: two sinusoids (1-4 Hz) per axis of position (m), aim (radians) and roll (degrees)
        self.shake = [(rng.uniform(1.0, 4.0, 2), rng.uniform(0, 2 * math.pi, 2)) for _ in range(6)] if shaky else None
        self.shake_amp = (rng.uniform(0.008, 0.02), math.radians(rng.uniform(0.6, 1.5)), rng.uniform(0.5, 1.5))

    def _wobble(self, axis: int, tau: np.ndarray) -> np.ndarray:
        freq, phase = self.shake[axis]
        t = tau[:, None] * self.seconds
        return np.sin(2 * math.pi * freq * t + phase).mean(axis=1)

    def at(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(camera_from_world [N, 4, 4], focal multiplier [N]) at clip times tau [N]."""
        tau = np.asarray(tau, np.float64)
        az = self.az0 + self.sgn * self.sweep * (tau - 0.5)
        dist = self.dist * (1.0 - self.push * tau)
        ray = np.stack([np.cos(self.elev) * np.cos(az), np.cos(self.elev) * np.sin(az),
                        np.full_like(az, math.sin(self.elev))], axis=-1)
        eyes = self.target + dist[:, None] * ray
        flat = -ray * np.array([1.0, 1.0, 0.0])
        eyes = eyes + (self.walk * self.dist * tau)[:, None] * flat / np.linalg.norm(flat, axis=-1, keepdims=True)
        aims = self.target + ((self.sgn * self.pan * (tau - 0.5) + self.sgn * self.turn * tau) * self.dist)[:, None] \
            * self.lateral
        roll = np.zeros_like(tau)
        if self.shake is not None:
            move, aim, roll_deg = self.shake_amp
            eyes = eyes + move * np.stack([self._wobble(i, tau) for i in range(3)], axis=-1)
            aims = aims + aim * self.dist * np.stack([self._wobble(3, tau) * self.lateral[0],
                                                      self._wobble(3, tau) * self.lateral[1],
                                                      self._wobble(4, tau)], axis=-1)
            roll = roll_deg * self._wobble(5, tau)
        cams = np.stack([make_pose(rot_z(r), np.zeros(3)) @ _look_at(e, a, _UP) for e, a, r in zip(eyes, aims, roll)])
        zoom = np.ones_like(tau)
        if self.zoom_span is not None:
            span, direction = self.zoom_span
            s = _smoothstep(tau if direction > 0 else 1.0 - tau)
            zoom = 1.0 + (span - 1.0) * s
        return cams, zoom


# ----------------------------------------------------------------------------- walkers


def _add_walkers(plan: str, wb: _WorldBuilder, rng: np.random.Generator, cams: np.ndarray, p0: np.ndarray,
                 obj_radius: float, clearance: float, fps: float) -> None:
    """one: a walker crosses; crossing: 2-3 walkers at different times and depths; stops: one stands a while."""
    F = cams.shape[0]
    eye0 = -cams[0, :3, :3].T @ cams[0, :3, 3]
    lam0 = min(MAX_LAM, clearance / float(np.linalg.norm((eye0 - p0)[:2])))
    if plan == "crossing":
        n = int(rng.integers(2, 4))
        lams = lam0 + (MAX_LAM - lam0) * np.linspace(0.0, 1.0, n) * rng.uniform(0.85, 1.0, n)
        times = (np.arange(n) + rng.uniform(0.3, 0.7, n)) / n * (F - 1)
        for lam, tc in zip(lams, rng.permutation(times)):  # depth order and time order differ by seed
            _add_walker(wb, rng, cams, p0, obj_radius, lam, tc, fps)
    elif plan == "stops":
        hold = rng.uniform(0.25, 0.4) * (F - 1)
        _add_walker(wb, rng, cams, p0, obj_radius, lam0 + rng.uniform(0.0, 0.1), rng.uniform(0.2, 0.35) * (F - 1),
                    fps, hold=hold)
    else:
        _add_walker(wb, rng, cams, p0, obj_radius, lam0 + rng.uniform(0.0, 0.15), rng.uniform(0.35, 0.65) * (F - 1),
                    fps)


def _add_walker(wb: _WorldBuilder, rng: np.random.Generator, cams: np.ndarray, p0: np.ndarray, obj_radius: float,
                lam: float, t_cross: float, fps: float, hold: float = 0.0) -> None:
    """A box walker on a straight line across the view line to the object, `lam` of the way to the camera
    of frame t_cross, where it reaches the line (then stands `hold` frames, a bit off the line)."""
    F = cams.shape[0]
    tc = int(round(min(max(t_cross, 0.0), F - 1)))
    eye = -cams[tc, :3, :3].T @ cams[tc, :3, 3]
    to_cam = (eye - p0) * np.array([1.0, 1.0, 0.0])
    lateral = np.cross(_UP, to_cam / np.linalg.norm(to_cam))
    cone = (1.0 - lam) * obj_radius  # half-width of the object's view cone where the walker crosses it
    half_w = max(rng.uniform(0.18, 0.28), 1.6 * cone)
    depth = rng.uniform(0.8, 1.5) * _WALKER_DEPTH
    height = rng.uniform(1.6, 2.0)
    # at walking speed, but fast enough to be clear of the object in frame 0
    clear = half_w + cone + depth + 0.15
    speed = max(rng.uniform(*WALK_SPEED) / fps, clear / max(t_cross, 1.0))
    stand = rng.uniform(-0.6, 0.6) * half_w if hold > 0 else 0.0
    t = np.arange(F, dtype=np.float64)
    along = speed * (np.minimum(t - t_cross, 0.0) + np.maximum(t - t_cross - hold, 0.0)) + stand
    along *= rng.choice([-1.0, 1.0])
    base = p0 + lam * (eye - p0)
    base[2] = 0.5 * height
    yaw = math.degrees(math.atan2(lateral[1], lateral[0]))
    poses = np.stack([_pose_z(yaw, base + a * lateral) for a in along])
    mat = _Material(*_palette(rng, rng.uniform(0, 1), 0.65, 0.55, 0.1), freq=(7, 7, 7), tile=(99, 99, 0.18),
                    contrast=0.3, grout=0.02)
    wb.box("walker", (half_w, depth, 0.5 * height), mat, poses=poses, dynamic=True)


# ----------------------------------------------------------------------------- moving boards


def _board(wb: _WorldBuilder, rng: np.random.Generator, poses: np.ndarray, half, local_p) -> tuple:
    """Add the moving board; returns (pid, p0 the object's base in frame 0, support motion [F, 4, 4])."""
    mat = _Material(*_palette(rng, rng.uniform(0, 1), 0.6, 0.7, 0.15), freq=(14, 14, 14), tile=(0.06, 0.06, 99),
                    contrast=0.3, grout=0.006)
    pid = wb.box("board", half, mat, poses=poses, dynamic=True)
    p0 = poses[0, :3, :3] @ np.asarray(local_p, np.float64) + poses[0, :3, 3]
    return pid, p0, poses @ invert_rigid(poses[0])


def _start_and_span(rng: np.random.Generator) -> tuple[float, float]:
    """When the motion starts (clip fraction) and how long it takes."""
    start = rng.uniform(0.05, 0.4)
    return start, min(rng.uniform(0.35, 0.6), 0.97 - start)


def _sliding_board(wb, rng, tau, table_point, obj_radius):
    """A board that starts sliding (slowly, then faster) 15-30 cm in a random direction."""
    slide = rng.uniform(0.15, 0.3)
    angle = rng.uniform(0, 2 * math.pi)
    dvec = np.array([math.cos(angle), math.sin(angle), 0.0])
    half = (max(0.2, obj_radius + 0.12), max(0.15, obj_radius + 0.08), 0.015)
    start_pt = table_point + np.array([0.0, 0.0, half[2]]) - 0.5 * slide * dvec
    yaw = rng.uniform(-30, 30)
    start, span = _start_and_span(rng)
    s = _smoothstep((tau - start) / span)
    poses = np.stack([_pose_z(yaw, start_pt + slide * si * dvec) for si in s])
    return _board(wb, rng, poses, half, (rng.uniform(-0.05, 0.05), rng.uniform(-0.03, 0.03), half[2]))


def _turntable_board(wb, rng, tau, table_point, obj_radius):
    """A square board turning about its centre at a constant rate from a random start, the object off-centre."""
    r_off = rng.uniform(0.03, 0.1)
    a_off = rng.uniform(0, 2 * math.pi)
    half_xy = max(rng.uniform(0.18, 0.24), r_off + obj_radius + 0.03)
    half = (half_xy, half_xy, 0.015)
    turn = rng.choice([-1.0, 1.0]) * rng.uniform(60, 150)
    start = rng.uniform(0.0, 0.3)
    s = np.clip((tau - start) / (1.0 - start), 0.0, 1.0)
    yaw0 = rng.uniform(-45, 45)
    center = table_point + np.array([0.0, 0.0, half[2]])
    poses = np.stack([_pose_z(yaw0 + turn * si, center) for si in s])
    return _board(wb, rng, poses, half, (r_off * math.cos(a_off), r_off * math.sin(a_off), half[2]))


def _carried_board(wb, rng, tau, table_point, obj_radius):
    """A thick board lifted 10-25 cm off the table, then carried 15-35 cm aside (turning a little)."""
    half = (max(0.2, obj_radius + 0.1), max(0.16, obj_radius + 0.07), 0.04)
    lift, carry = rng.uniform(0.1, 0.25), rng.uniform(0.15, 0.35)
    angle = rng.uniform(0, 2 * math.pi)
    dvec = np.array([math.cos(angle), math.sin(angle), 0.0])
    turn, yaw = rng.uniform(-20, 20), rng.uniform(-30, 30)
    start, span = _start_and_span(rng)
    s_lift = _smoothstep((tau - start) / (0.35 * span))
    s_carry = _smoothstep((tau - start - 0.25 * span) / (0.75 * span))
    center = table_point + np.array([0.0, 0.0, half[2]])
    poses = np.stack([_pose_z(yaw + turn * c, center + up * lift * _UP + c * carry * dvec)
                      for up, c in zip(s_lift, s_carry)])
    return _board(wb, rng, poses, half, (rng.uniform(-0.04, 0.04), rng.uniform(-0.03, 0.03), half[2]))
