"""A quick look at an object track: the object's base and axes drawn into every frame."""

from __future__ import annotations

import numpy as np

from .geometry import project, transform
from .scene import ObjectTrack, SceneRecord

# canonical object frame: base centre, then the tips of right (+X), up (+Y) and front (+Z) at half height
_AXES = np.array([[0, 0, 0], [0.5, 0, 0], [0, 1.0, 0], [0, 0, 0.5]], np.float64)
_COLOURS = ((255, 60, 60), (60, 220, 60), (60, 120, 255))  # right, up, front


def track_preview(scene: SceneRecord, track: ObjectTrack) -> np.ndarray:
    """uint8 [F, H, W, 3]: each frame with the tracked base (yellow; red where the support moved)
    and the object's right / up / front axes."""
    import cv2

    K = np.asarray(scene.K, np.float64)
    out = scene.frames.copy()
    for t in range(scene.num_frames):
        camera_from_object = np.asarray(scene.camera_from_world[t], np.float64) @ track.world_from_object[t]
        uv, z = project(transform(camera_from_object, _AXES), K)
        if not (z > 0).all() or not np.isfinite(uv).all():
            continue
        base = tuple(int(round(c)) for c in uv[0])
        for tip, colour in zip(uv[1:], _COLOURS):
            cv2.line(out[t], base, tuple(int(round(c)) for c in tip), colour, 2, cv2.LINE_AA)
        cv2.circle(out[t], base, 4, (255, 60, 60) if track.moving[t] else (255, 220, 0), -1, cv2.LINE_AA)
    return out
