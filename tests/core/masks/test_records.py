"""The stage records check their shapes on construction and name the field that is off."""

import dataclasses
import json

import numpy as np
import pytest

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks.object3d import Object3D
from insertanywhere.masks.placement import PlacedObject, SurfaceFrame, parse_placement
from insertanywhere.masks.scene import ObjectTrack, SceneRecord
from insertanywhere.masks.vertical import scene_lines


def _poses(num: int) -> np.ndarray:
    return np.repeat(np.eye(4)[None], num, axis=0)


def test_track_defaults_to_nothing_followed_in_every_frame():
    track = ObjectTrack(_poses(5))
    assert track.support_count.tolist() == [0] * 5 and track.support_count.dtype == np.int64
    assert track.moving.tolist() == [False] * 5 and track.warnings == []


def test_track_keeps_its_per_frame_values():
    track = ObjectTrack(_poses(3), [7, 6, 0], [False, True, True], ["lost"])
    assert track.support_count.tolist() == [7, 6, 0] and track.moving.tolist() == [False, True, True]


@pytest.mark.parametrize("kwargs, field", [
    ({"world_from_object": np.eye(4)}, "world_from_object"),
    ({"world_from_object": _poses(3).astype(np.int64)}, "world_from_object"),
    ({"support_count": [1, 2]}, "support_count"),
    ({"support_count": [1.5, 2.0, 3.0]}, "support_count"),
    ({"moving": [0, 1, 0]}, "moving"),
    ({"moving": np.zeros((3, 1), bool)}, "moving"),
    ({"warnings": "lost"}, "warnings"),
    ({"support": np.zeros((4, 2))}, "support"),
])
def test_a_wrong_track_field_is_named(kwargs, field):
    with pytest.raises(ValueError, match=rf"ObjectTrack\.{field}\b"):
        ObjectTrack(**{"world_from_object": _poses(3), **kwargs})


# --- SceneRecord ----------------------------------------------------------------------------------

def _scene(**fields) -> SceneRecord:
    F, H, W = 3, 8, 12
    base = dict(frames=np.zeros((F, H, W, 3), np.uint8), depth=np.ones((F, H, W), np.float32),
                K=np.array([[10.0, 0, 6], [0, 10, 4], [0, 0, 1]], np.float32),
                camera_from_world=np.repeat(np.eye(4, dtype=np.float32)[None], F, 0),
                moving=np.zeros((F, H, W), bool))
    return SceneRecord(**{**base, **fields})


@pytest.mark.parametrize("fields, field", [
    ({"depth": np.ones((3, 8, 11), np.float32)}, "depth"),
    ({"camera_from_world": np.eye(4, dtype=np.float32)}, "camera_from_world"),
    ({"moving": np.zeros((3, 8, 12), np.uint8)}, "moving"),
    ({"lines": np.zeros((4, 4), np.float32)}, "lines"),
    ({"depth_source": "lidar"}, "depth_source"),
    ({"intrinsics_source": "guess"}, "intrinsics_source"),
    ({"warnings": "one"}, "warnings"),
    ({"timings": {"flow": "slow"}}, "timings"),
    ({"cache_key": 7}, "cache_key"),
    ({"provenance": {"warnings": []}}, "provenance"),
])
def test_a_wrong_scene_field_is_named(fields, field):
    with pytest.raises(ValueError, match=rf"SceneRecord\.{field}\b"):
        _scene(**fields)


def test_typed_scene_fields_round_trip_through_a_saved_record(tmp_path):
    scene = _scene(depth_source="metric", intrinsics_source="given", warnings=["w"], timings={"flow": 1.5},
                   cache_key="ab12", provenance={"focal": 10.0})
    loaded = SceneRecord.load(scene.save(tmp_path / "scene"))
    assert (loaded.depth_source, loaded.intrinsics_source, loaded.warnings, loaded.timings, loaded.cache_key,
            loaded.provenance) == ("metric", "given", ["w"], {"flow": 1.5}, "ab12", {"focal": 10.0})


def test_format_2_record_with_info_json_loads_its_typed_fields(tmp_path):
    scene = _scene()
    path = tmp_path / "old.npz"
    info = {"depth_source": "disparity", "intrinsics_source": "default_fov", "focal": 9.5, "flow_preset": "fast",
            "timings": {"total": 2.0}, "warnings": ["frame 2: filled"]}
    np.savez_compressed(path, frames=scene.frames, depth=scene.depth, K=scene.K,
                        world_to_camera=scene.camera_from_world, moving=scene.moving, flow_stride=np.int32(1),
                        fps=np.float32(16), format_version=np.int32(2), info_json=np.array(json.dumps(info)))
    loaded = SceneRecord.load(path)
    assert (loaded.depth_source, loaded.intrinsics_source) == ("disparity", "default_fov")
    assert loaded.timings == {"total": 2.0} and loaded.warnings == ["frame 2: filled"]
    assert loaded.provenance == {"focal": 9.5, "flow_preset": "fast"} and loaded.cache_key is None


def test_a_saved_record_with_a_bad_typed_field_is_refused_by_name(tmp_path):
    path = _scene().save(tmp_path / "scene")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["info_json"] = np.array(json.dumps({"depth_source": "sonar"}))
    np.savez_compressed(path, **arrays)
    with pytest.raises(InsertAnywhereError, match="depth_source"):
        SceneRecord.load(path)


def test_scene_lines_leaves_the_record_unchanged():
    frames = np.zeros((2, 40, 60, 3), np.uint8)
    frames[:, 5:35, 28:31] = 255  # one vertical bar
    scene = _scene(frames=frames, depth=np.ones((2, 40, 60), np.float32), moving=np.zeros((2, 40, 60), bool),
                   camera_from_world=np.repeat(np.eye(4, dtype=np.float32)[None], 2, 0))
    before = dict(vars(scene))
    evidence = scene_lines(scene)
    assert scene.lines is None and all(getattr(scene, k) is v for k, v in before.items())
    with_lines = dataclasses.replace(scene, lines=np.array([[0, 29, 5, 29, 34]], np.float32))
    assert len(scene_lines(with_lines)) == 1 and len(evidence) >= 1


# --- PlacedObject ---------------------------------------------------------------------------------

def _surface() -> SurfaceFrame:
    axes = np.eye(3)
    return SurfaceFrame(point=np.zeros(3), right=axes[0], up=axes[1], forward=axes[2], height=1.0, depth=4.0,
                        inlier_ratio=1.0)


@pytest.mark.parametrize("fields, field", [
    ({"world_from_object": np.eye(4)[None]}, "world_from_object"),
    ({"world_from_object": np.eye(3)}, "world_from_object"),
    ({"placement": {"anchor": [1, 2], "height_px": 30}}, "placement"),
    ({"surface": None}, "surface"),
])
def test_a_wrong_placed_object_field_is_named(fields, field):
    base = {"placement": parse_placement({"anchor": [1, 2], "height_px": 30}), "world_from_object": np.eye(4),
            "surface": _surface()}
    with pytest.raises(ValueError, match=rf"PlacedObject\.{field}\b"):
        PlacedObject(**{**base, **fields})


def test_masks_from_scene_takes_a_parsed_placement():
    from insertanywhere.masks.pipeline import masks_from_scene

    with pytest.raises(InsertAnywhereError, match="takes a Placement, got dict; read the JSON with load_placement"):
        masks_from_scene(_scene(), None, {"anchor": [1, 2], "height_px": 30})


def _object_fields() -> dict:
    return {"vertices": np.zeros((4, 3), np.float32), "faces": np.array([[0, 1, 2], [0, 2, 3]], np.int32),
            "colors": np.zeros((4, 3), np.uint8)}


@pytest.mark.parametrize("change, field", [
    ({"vertices": np.zeros((4, 2), np.float32)}, "vertices"),
    ({"faces": np.zeros((2, 4), np.int32)}, "faces"),
    ({"faces": np.zeros((2, 3), np.float32)}, "faces"),
    ({"colors": np.zeros((3, 3), np.uint8)}, "colors"),
    ({"object_from_source": np.eye(3)}, "object_from_source"),
])
def test_a_wrong_object_field_is_named(change, field):
    with pytest.raises(ValueError, match=f"^Object3D.{field} is "):
        Object3D(**{**_object_fields(), **change})


def test_a_point_cloud_object_needs_no_faces():
    obj = Object3D(**{**_object_fields(), "faces": None})
    assert not obj.is_mesh and obj.warnings == []
