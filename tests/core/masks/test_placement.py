"""Place Object: strict placement JSON, the surface frame from depth, and the frame-0 pose."""

import json
from functools import lru_cache

import numpy as np
import pytest

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks.geometry import invert_rigid, make_pose, project, rot_x, transform
from insertanywhere.masks.object3d import object_from_trimesh
from insertanywhere.masks.placement import Placement, parse_placement, place_object, placement_pose
from insertanywhere.sample_scene import make_scene

GOOD = {"anchor": [80.5, 60.25], "height_px": 30, "yaw_deg": 10, "pitch_deg": 0, "roll_deg": 0,
        "offset": [0, 0, 0], "top_k": 64}


@lru_cache(maxsize=None)
def scene(kind, seed=0):
    return make_scene(kind, num_frames=5, width=160, height=96, seed=seed)


def test_parse_accepts_text_dict_and_defaults():
    p = parse_placement(json.dumps(GOOD))
    assert p == parse_placement(GOOD) and p.anchor == (80.5, 60.25) and p.top_k == 64
    minimal = parse_placement('{"anchor": [1, 2], "height_px": 5.5}')
    assert minimal == Placement((1.0, 2.0), 5.5)
    assert parse_placement(minimal.to_dict()) == minimal


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"anchor": [1, 2]}', "lacks"),
    ('{"anchor": [1, 2], "height_px": 10, "scale": 2}', "Unknown placement key"),
    ('{"anchor": [1], "height_px": 10}', "list of 2"),
    ('{"anchor": [1, "a"], "height_px": 10}', "finite number"),
    ('{"anchor": [1, 2], "height_px": -3}', "> 0"),
    ('{"anchor": [1, 2], "height_px": true}', "finite number"),
    ('{"anchor": [1, 2], "height_px": NaN}', "finite number"),
    ('{"anchor": [1, 2], "height_px": 10, "top_k": 2}', "top_k"),
    ('{"anchor": [1, 2], "height_px": 10, "top_k": 8.5}', "top_k"),
    ('{"anchor": [1, 2], "height_px": 10, "offset": [0, 0]}', "list of 3"),
    ('{"anchor": [1, 2], "height_px": 10, "yaw_deg": "45"}', "finite number"),
])
def test_parse_rejects_malformed_placements(text, message):
    with pytest.raises(InsertAnywhereError, match=message):
        parse_placement(text)


@pytest.mark.parametrize("kind, seed", [("static", 0), ("moving_support", 0), ("occluder", 1), ("static", 3)])
def test_pose_reproduces_ground_truth(kind, seed):
    s = scene(kind, seed)
    obj = object_from_trimesh(s.object_mesh)
    pose, surface = placement_pose(s.placement, s.depth[0], s.K, s.camera_from_world[0])
    world_from_mesh = pose @ obj.object_from_source
    truth = s.object_world_from_mesh[0]
    scale = np.cbrt(np.linalg.det(truth[:3, :3]))
    assert np.linalg.norm(world_from_mesh[:3, 3] - truth[:3, 3]) < 2e-3
    np.testing.assert_allclose(world_from_mesh[:3, :3], truth[:3, :3], atol=2e-3 * scale)
    assert surface.up @ s.surface_normal > np.cos(np.radians(0.5))


def tilted_plane(width=200, height=150):
    """A floor through (0, 1, 4) tilted 10 degrees towards a level camera; sky (depth 100) above
    its horizon at row ~43. Returns (depth [H, W], K, unit normal, anchor pixel of (0, 1, 4))."""
    K = np.array([[180.0, 0, (width - 1) / 2], [0, 180.0, (height - 1) / 2], [0, 0, 1]])
    normal = rot_x(10) @ np.array([0.0, -1.0, 0.0])
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    with np.errstate(divide="ignore"):
        depth = (normal @ [0.0, 1.0, 4.0]) / (rays @ normal)
    depth[(depth <= 0) | (depth > 100)] = 100.0
    return depth, K, normal, [K[0, 2], K[1, 2] + 45.0]


def test_surface_frame_on_a_plane_and_height_rule():
    depth, K, normal, anchor = tilted_plane()
    plan = {"anchor": anchor, "height_px": 40, "yaw_deg": 0, "offset": [0, 0, 0]}
    pose, surface = placement_pose(plan, depth, K)
    assert surface.up @ normal > np.cos(np.radians(0.1))
    np.testing.assert_allclose(surface.point, [0, 1, 4], atol=1e-6)
    assert surface.height == pytest.approx(40 * 4 / 180.0)
    # forward points towards the camera within the surface; right = up x forward = image right
    assert surface.forward @ -surface.point > 0 and abs(surface.forward @ surface.up) < 1e-9
    assert surface.right[0] > 0.99
    # the unit object's top lands about height_px above the anchor
    uv, _ = project(transform(pose, np.array([[0.0, 1.0, 0.0]])), K)
    assert uv[0, 0] == pytest.approx(anchor[0], abs=1e-6) and anchor[1] - uv[0, 1] == pytest.approx(40, rel=0.1)
    # yaw turns about up, offsets move along (r, u, f) in object heights
    yawed, _ = placement_pose({**plan, "yaw_deg": 90}, depth, K)
    np.testing.assert_allclose(yawed[:3, :3] @ [0, 0, 1], surface.height * surface.right, atol=1e-9)
    shifted, _ = placement_pose({**plan, "offset": [0.5, 0.25, 0]}, depth, K)
    np.testing.assert_allclose(shifted[:3, 3] - pose[:3, 3],
                               surface.height * (0.5 * surface.right + 0.25 * surface.up), atol=1e-9)
    # a camera_from_world for frame 0 expresses the same pose in world coordinates
    camera_from_world = make_pose(rot_x(20), [1.0, 2.0, 3.0])
    world_pose, world_surface = placement_pose(plan, depth, K, camera_from_world)
    np.testing.assert_allclose(camera_from_world @ world_pose, pose, atol=1e-9)
    world_from_camera = invert_rigid(camera_from_world)
    np.testing.assert_allclose(world_surface.point, transform(world_from_camera, surface.point[None])[0], atol=1e-9)


def test_bad_anchors_raise():
    depth, K, _, _ = tilted_plane()
    with pytest.raises(InsertAnywhereError, match="outside frame 0"):
        placement_pose({"anchor": [250, 10], "height_px": 30}, depth, K)
    with pytest.raises(InsertAnywhereError, match="far background"):
        placement_pose({"anchor": [100, 10], "height_px": 30}, depth, K)  # the sky above the horizon
    holes = depth.copy()
    holes[110:130, 90:110] = np.nan
    with pytest.raises(InsertAnywhereError, match="no depth"):
        placement_pose({"anchor": [100, 120], "height_px": 30}, holes, K)


def test_preview_and_object_behind_camera():
    s = scene("static")
    obj = object_from_trimesh(s.object_mesh)
    pose, surface, preview = place_object(s.placement, obj, s.frames[0], s.depth[0], s.K, s.camera_from_world[0])
    assert preview.shape == s.frames[0].shape and preview.dtype == np.uint8
    changed = (preview != s.frames[0]).any(-1)
    iou = (changed & s.gt_visible[0]).sum() / (changed | s.gt_visible[0]).sum()
    assert iou > 0.9
    with pytest.raises(InsertAnywhereError, match="behind the camera"):
        place_object({**s.placement, "offset": [0, 0, 200]}, obj, s.frames[0], s.depth[0], s.K, s.camera_from_world[0])
