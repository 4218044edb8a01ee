"""The scene's vertical from its lines (masks.vertical) and its use for 'up' (placement.upright_normal)."""

import cv2
import numpy as np
import pytest

from insertanywhere.masks.geometry import rot_x, rot_y
from insertanywhere.masks.placement import TRUSTED_LEAN_DEG, upright_normal
from insertanywhere.masks.vertical import LineEvidence, detect_segments, scene_lines

K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
SIZE = (240, 320)
TRUE_UP = np.array([0.08, -1.0, 0.12]) / np.linalg.norm([0.08, -1.0, 0.12])  # world frame is arbitrary


def _angle(a, b):
    return np.degrees(np.arccos(np.clip(abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def _cameras(num):
    """camera_from_world [num, 4, 4]: a slow pan and tilt with a small sideways move."""
    poses = np.tile(np.eye(4), (num, 1, 1))
    for t in range(num):
        poses[t, :3, :3] = rot_y(2.0 * t) @ rot_x(-1.0 * t)
        poses[t, :3, 3] = [-0.05 * t, 0.0, 0.0]
    return poses


def _background(rng):
    noise = rng.normal(128, 25, SIZE).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0), 0, 255)


def _frames(poses, poles: bool, clutter: int, seed=0):
    """Frames uint8 [F, H, W, 3]: dark vertical poles (world direction TRUE_UP) and/or random
    near-vertical strokes on a soft noise background."""
    rng = np.random.default_rng(seed)
    bases = np.c_[rng.uniform(-2.0, 2.0, 14), rng.uniform(0.2, 1.0, 14), rng.uniform(3.0, 6.0, 14)]
    frames = []
    for pose in poses:
        image = _background(rng)
        if poles:
            for base in bases:
                top = base + 1.2 * TRUE_UP
                ends = [(pose[:3, :3] @ p + pose[:3, 3]) for p in (base, top)]
                (u0, v0), (u1, v1) = [(K[0, 0] * e[0] / e[2] + K[0, 2], K[1, 1] * e[1] / e[2] + K[1, 2]) for e in ends]
                cv2.line(image, (int(round(u0 * 16)), int(round(v0 * 16))), (int(round(u1 * 16)), int(round(v1 * 16))),
                         20, 2, cv2.LINE_AA, shift=4)
        for _ in range(clutter):
            x, y = rng.uniform(20, SIZE[1] - 20), rng.uniform(20, SIZE[0] - 60)
            lean = np.radians(rng.uniform(-20, 20))
            length = rng.uniform(30, 70)
            end = (x + length * np.sin(lean), y + length * np.cos(lean))
            cv2.line(image, (int(x * 16), int(y * 16)), (int(end[0] * 16), int(end[1] * 16)), 230, 2,
                     cv2.LINE_AA, shift=4)
        frames.append(np.repeat(image.astype(np.uint8)[..., None], 3, axis=-1))
    return np.stack(frames)


def test_vertical_from_poles_in_several_frames():
    poses = _cameras(6)
    frames = _frames(poses, poles=True, clutter=6)
    segments = detect_segments(frames, count=6)
    assert segments.shape[1] == 5 and len(np.unique(segments[:, 0])) >= 4
    tilted_guess = rot_x(6.0) @ TRUE_UP  # a depth normal 6 degrees off
    found = LineEvidence(segments, K, poses).vertical_near(tilted_guess)
    assert found is not None
    assert _angle(found.direction, TRUE_UP) < 0.5
    assert found.direction @ tilted_guess > 0  # signed like the normal it replaces
    assert found.inliers >= 14 and found.frames >= 4 and found.peak > 0.6 and found.share > 0.3


@pytest.mark.parametrize("seed", range(4))
def test_no_vertical_from_clutter_or_far_from_the_normal(seed):
    poses = _cameras(6)
    clutter = LineEvidence(detect_segments(_frames(poses, poles=False, clutter=14, seed=seed)), K, poses)
    assert len(clutter) >= 30  # plenty of near-vertical strokes ...
    assert clutter.vertical_near(TRUE_UP) is None  # ... that do not meet in one point
    poles = LineEvidence(detect_segments(_frames(poses, poles=True, clutter=0)), K, poses)
    assert poles.vertical_near(rot_x(30.0) @ TRUE_UP) is None  # a slope, not a level surface
    assert LineEvidence(np.zeros((0, 5)), K, poses).vertical_near(TRUE_UP) is None


def test_scene_lines_detects_missing_segments_without_changing_the_record():
    class Scene:  # the fields scene_lines reads from a SceneRecord
        frames = _frames(_cameras(3), poles=True, clutter=0)
        K = K
        camera_from_world = _cameras(3)
        lines = None

    scene = Scene()
    evidence = scene_lines(scene)
    assert scene.lines is None and len(evidence) > 10
    scene.lines = detect_segments(scene.frames)
    assert np.array_equal(scene_lines(scene).mid, evidence.mid)  # the kept segments are the ones detected


def _image_direction(point, direction):
    """Unit image direction in which `direction` [3] leaves the pixel of `point` [3]."""
    a = K @ point
    b = K @ (point + 1e-4 * np.linalg.norm(point) * direction)
    d = b[:2] / b[2] - a[:2] / a[2]
    return d / np.linalg.norm(d)


@pytest.mark.parametrize("tilt_deg", [1.0, 3.0])
def test_upright_normal_points_at_the_vanishing_point_and_keeps_the_lean(tilt_deg):
    point = np.array([0.4, 0.6, 4.0])
    vertical = np.array([0.0, -0.96, -0.28]) / np.linalg.norm([0.0, -0.96, -0.28])
    normal = rot_y(tilt_deg) @ rot_x(0.5) @ vertical  # depth normal, off sideways and forwards
    up = upright_normal(normal, vertical, point)
    vp = K @ vertical
    to_vp = vp[:2] / vp[2] - (K @ point)[:2] / point[2]
    to_vp /= np.linalg.norm(to_vp)
    assert abs(_image_direction(point, up) @ to_vp) > np.cos(np.radians(0.01))
    # only the sideways error is removed: the result stays in the plane of the ray and the vertical
    assert abs(up @ np.cross(point, vertical)) < 1e-9
    assert _angle(up, normal) <= tilt_deg + 1e-6


def test_upright_normal_takes_the_vertical_whole_when_depth_is_bent():
    point = np.array([0.0, 0.5, 3.0])
    vertical = np.array([0.0, -1.0, 0.0])
    normal = rot_x(TRUSTED_LEAN_DEG + 3.0) @ vertical
    assert np.allclose(upright_normal(normal, vertical, point), vertical)


def test_upright_auto_trusts_measured_depth_only():
    from types import SimpleNamespace

    from insertanywhere.errors import InsertAnywhereError
    from insertanywhere.masks.vertical import use_upright

    def scene(depth_source, intrinsics_source):
        return SimpleNamespace(depth_source=depth_source, intrinsics_source=intrinsics_source)

    assert not use_upright(scene("metric", "given"))  # LiDAR-like depth with the camera's K
    assert use_upright(scene("metric", "default_fov"))  # the focal is a guess: planes bend
    assert use_upright(scene("disparity", "given"))
    assert use_upright(scene("motion", "fov"))
    assert use_upright(scene("metric", "given"), "on") and not use_upright(scene("disparity", "fov"), "off")
    with pytest.raises(InsertAnywhereError, match="auto, on, off"):
        use_upright(scene("metric", "given"), "sideways")
