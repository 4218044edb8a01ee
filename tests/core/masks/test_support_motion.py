"""Support motion decided by a model choice over a window: evidence, not per-frame thresholds."""

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest

from insertanywhere.masks.geometry import make_pose, rot_x, rot_y
from insertanywhere.masks.object3d import object_from_trimesh
from insertanywhere.masks.placement import placement_pose
from insertanywhere.masks.propagate import propagate
from insertanywhere.masks.reproject import reproject
from insertanywhere.masks.support_motion import WINDOW_STEPS, Step, SupportWindow
from insertanywhere.sample_scene import make_scene


def _tiles(rng, sigma, shared=(0.0, 0.0), count=24):
    return {(i, 0): rng.normal(0.0, sigma, 2) + shared for i in range(count)}


def _run(steps):
    window = SupportWindow()
    return [window.add(step) for step in steps]


def test_a_slow_steady_drift_wins_over_noise_and_noise_does_not():
    rng = np.random.default_rng(0)
    noise = 0.3  # px per step, as DIS flow on a small textured patch
    quiet = _run([Step(rng.normal(0.0, noise, 2), 60, _tiles(rng, noise)) for _ in range(40)])
    assert not any(c.moving for c in quiet)
    drift = np.array([0.35, 0.0])  # about one noise sigma per step: invisible in any single step
    sliding = _run([Step(drift + rng.normal(0.0, noise, 2), 60, _tiles(rng, noise)) for _ in range(2 * WINDOW_STEPS)])
    first = next(i for i, c in enumerate(sliding) if c.moving)
    assert 2 <= first < WINDOW_STEPS  # it adds up within one window
    assert all(c.moving for c in sliding[first:])


def test_camera_error_that_every_static_tile_shares_is_not_support_motion():
    rng = np.random.default_rng(1)
    steps = []
    for t in range(30):
        shared = np.array([1.5, -0.8]) * np.sin(t / 2.0) + [0.6, 0.0]  # hand shake plus a steady camera drift
        steps.append(Step(shared + rng.normal(0.0, 0.2, 2), 60, _tiles(rng, 0.2, shared)))
    assert not any(c.moving for c in _run(steps))


def test_no_decision_without_static_tiles_or_a_visible_support():
    rng = np.random.default_rng(2)
    assert _run([Step(np.array([5.0, 0.0]), 60, _tiles(rng, 0.2, count=3))])[0] is None
    assert _run([Step(None, 0, _tiles(rng, 0.2))])[0] is None


@lru_cache(maxsize=None)
def _scene(kind, seed):
    s = make_scene(kind, num_frames=21, width=200, height=120, seed=seed)
    return s, s.to_scene_record()


def _shaken(record, seed, degrees):
    """The record with each camera after frame 0 turned by a random small rotation (estimated
    cameras are never exact); the flow stays the true one."""
    rng = np.random.default_rng(seed)
    cams = record.world_to_camera.astype(np.float64).copy()
    for t in range(1, len(cams)):
        ax, ay = np.radians(rng.normal(0.0, degrees, 2))
        cams[t] = make_pose(rot_x(ax) @ rot_y(ay), np.zeros(3)) @ cams[t]
    return replace(record, world_to_camera=cams.astype(record.world_to_camera.dtype))


def _track(kind, seed, shake_deg=0.0):
    s, record = _scene(kind, seed)
    if shake_deg:
        record = _shaken(record, seed, shake_deg)
    pose0, surface = placement_pose(s.placement, record.depth[0], record.K, record.world_to_camera[0])
    result = propagate(record, pose0, surface.point, s.placement["top_k"], s.placement["height_px"])
    return s, record, result


def _visible_iou(s, record, result):
    masks = reproject(record, object_from_trimesh(s.object_mesh), result).visible
    inter = (masks & s.gt_visible).sum((1, 2))
    union = (masks | s.gt_visible).sum((1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_forward_walk_with_camera_error_is_not_support_motion(seed):
    s, record, result = _track("walk_forward", seed, shake_deg=0.15)
    assert not any(result.info["moving"])
    assert (result.world_from_object == result.world_from_object[0]).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_slowly_sliding_tray_is_followed_from_when_it_starts(seed):
    s, record, result = _track("sliding_support", seed)
    travelled = np.linalg.norm(s.object_world_from_mesh[:, :3, 3] - s.object_world_from_mesh[0, :3, 3], axis=1)
    starts = int(np.argmax(travelled > 1e-4))
    flagged = int(np.argmax(result.info["moving"]))
    assert any(result.info["moving"]) and abs(flagged - starts) <= 2
    assert all(result.info["moving"][flagged:])
    iou = _visible_iou(s, record, result)
    assert iou.mean() >= 0.9 and iou[-1] >= 0.85
