"""Propagate: static supports keep the world pose exactly, moving supports carry the object."""

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest

from insertanywhere.masks.geometry import make_pose, rot_z, rotation_angle_deg, transform
from insertanywhere.masks.object3d import object_from_trimesh
from insertanywhere.masks.placement import placement_pose
from insertanywhere.masks.propagate import propagate, robust_rigid
from insertanywhere.sample_scene import make_scene


@lru_cache(maxsize=None)
def scene(kind, seed=0):
    s = make_scene(kind, num_frames=17, width=160, height=96, seed=seed)
    return s, s.to_scene_record()


def track(kind, seed=0, **kwargs):
    s, record = scene(kind, seed)
    record = replace(record, **kwargs)
    obj = object_from_trimesh(s.object_mesh)
    pose0, surface = placement_pose(s.placement, record.depth[0], record.K, record.camera_from_world[0])
    result = propagate(record, pose0, surface.point, s.placement["top_k"], s.placement["height_px"])
    return s, result, result.world_from_object @ obj.object_from_source


@pytest.mark.parametrize("kind, seed", [("static", 0), ("static", 1), ("occluder", 0)])
def test_static_support_keeps_the_frame0_pose_exactly(kind, seed):
    s, result, poses = track(kind, seed)
    assert not any(result.moving)
    assert (result.world_from_object == result.world_from_object[0]).all()
    np.testing.assert_allclose(poses, s.object_world_from_mesh, atol=2e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_moving_support_carries_the_object(seed):
    s, result, poses = track("moving_support", seed)
    truth = s.object_world_from_mesh
    travelled = np.linalg.norm(truth[-1, :3, 3] - truth[0, :3, 3])
    assert travelled > 0.05
    err = np.linalg.norm(poses[:, :3, 3] - truth[:, :3, 3], axis=1)
    assert err.max() < 0.1 * travelled + 2e-3
    scale = np.cbrt(np.linalg.det(truth[0, :3, :3]))
    for t in (8, 16):
        assert rotation_angle_deg(poses[t, :3, :3].T @ truth[t, :3, :3] / scale ** 2) < 1.5
    assert sum(result.moving) >= 12


def test_moving_support_is_followed_without_motion_flags():
    # The reconstruction may miss a slow mover; its flow and look still carry the object.
    s, record = scene("moving_support", 0)
    _, result, poses = track("moving_support", 0, moving=np.zeros_like(record.moving))
    truth = s.object_world_from_mesh
    travelled = np.linalg.norm(truth[-1, :3, 3] - truth[0, :3, 3])
    err = np.linalg.norm(poses[:, :3, 3] - truth[:, :3, 3], axis=1)
    assert err.max() < 0.15 * travelled + 2e-3 and result.moving[-1]


def test_false_motion_flags_on_a_static_support_are_rejected():
    # Mark everything as moving: flow and the photometric check still say the support stays put,
    # so the object wanders by at most a few percent of its height over the video.
    s, record = scene("static", 0)
    _, result, poses = track("static", 0, moving=np.ones_like(record.moving))
    height = np.cbrt(np.linalg.det(s.object_world_from_mesh[0, :3, :3])) * s.object_mesh.extents[1]
    drift = np.linalg.norm(poses[:, :3, 3] - s.object_world_from_mesh[:, :3, 3], axis=1)
    assert drift.max() < 0.03 * height


def test_without_flow_or_when_disabled_the_pose_is_fixed():
    s, record = scene("moving_support", 0)
    pose0, surface = placement_pose(s.placement, record.depth[0], record.K, record.camera_from_world[0])
    off = propagate(record, pose0, surface.point, 64, s.placement["height_px"], enabled=False)
    assert (off.world_from_object == pose0).all()
    no_flow_record = replace(record, flow_fwd=None, flow_bwd=None, flow_valid=None)
    no_flow = propagate(no_flow_record, pose0, surface.point, 64, s.placement["height_px"])
    assert (no_flow.world_from_object == pose0).all() and no_flow.warnings


def test_robust_rigid_ignores_outliers():
    rng = np.random.default_rng(1)
    T = make_pose(rot_z(25), [0.3, -0.2, 0.1])
    src = rng.uniform(-1, 1, (60, 3))
    dst = transform(T, src) + rng.normal(0, 1e-3, src.shape)
    dst[:20] += rng.uniform(-1, 1, (20, 3))  # a third of the points follow an occluder
    est, inliers = robust_rigid(src, dst, np.random.default_rng(0))
    assert inliers[20:].mean() > 0.9 and inliers[:20].mean() < 0.2
    assert rotation_angle_deg(est[:3, :3].T @ T[:3, :3]) < 0.2
    assert np.linalg.norm(est[:3, 3] - T[:3, 3]) < 5e-3
