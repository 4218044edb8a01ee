"""Editor previews, and the fixture that ties js/placement_math.js to the Python placement.

`build_fixture()` computes placements with the Python code on small synthetic depth maps;
tests/js/fixtures/placement_cases.json holds its output and tests/js/placement_math.test.mjs
checks the JS against it. Regenerate after a change to placement.py:
    python tests/core/masks/test_editor_preview.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks.editor_preview import EditorSession, encode_jpeg, scaled_intrinsics
from insertanywhere.masks.geometry import pixel_grid, project, transform, unproject
from insertanywhere.masks.object3d import Object3D
from insertanywhere.masks.placement import parse_placement, placement_pose, plane_radius, surface_plane
from insertanywhere.masks.scene import SceneRecord

FIXTURE = Path(__file__).resolve().parents[2] / "js" / "fixtures" / "placement_cases.json"
W, H = 96, 64
K = np.array([[80.0, 0.0, 47.5], [0.0, 80.0, 31.5], [0.0, 0.0, 1.0]])
CANONICAL_POINTS = [[0, 0, 0], [0, 1, 0], [0.5, 0.5, 0.5], [-0.3, 0.2, 0.4], [0.2, 0.9, -0.35]]


def plane_depth(normal, offset, width=W, height=H, K=K) -> np.ndarray:
    """Camera z [H, W] of the plane n . X = offset (camera coordinates)."""
    u, v = pixel_grid(height, width)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    return (offset / (rays @ np.asarray(normal, np.float64))).astype(np.float64)


def fixture_depths() -> dict[str, np.ndarray]:
    """Small depth maps: a floor seen obliquely, a tray on it, a floor seen from straight
    above (the fallback forward), a wall, and a noisy floor."""
    floor_n = np.array([0.0, -np.cos(np.radians(35)), -np.sin(np.radians(35))])
    floor = plane_depth(floor_n, -1.2)
    tray = floor.copy()
    tray_depth = plane_depth(floor_n, -1.1)
    tray[34:56, 30:70] = tray_depth[34:56, 30:70]
    wall = plane_depth([0.15, 0.0, -1.0], -3.0)
    noisy = floor * (1 + 0.002 * np.random.default_rng(3).standard_normal(floor.shape))
    return {
        "floor": floor,
        "tray": tray,
        "overhead": np.full((H, W), 2.0),
        "wall": wall,
        "noisy_floor": noisy,
    }


PLACEMENTS = [
    ("floor", {"anchor": [48, 40], "height_px": 30}),
    ("floor", {"anchor": [20.5, 50.25], "height_px": 18, "yaw_deg": 33, "pitch_deg": -12, "roll_deg": 7,
               "offset": [0.1, -0.05, 0.2], "top_k": 32}),
    ("tray", {"anchor": [50, 45], "height_px": 24, "yaw_deg": -28}),
    ("overhead", {"anchor": [47.5, 31.5], "height_px": 20, "yaw_deg": 90}),
    ("overhead", {"anchor": [60, 20], "height_px": 40, "roll_deg": 180, "offset": [0, 0.5, 0]}),
    ("wall", {"anchor": [30, 30], "height_px": 26, "pitch_deg": 45}),
    ("noisy_floor", {"anchor": [40, 44], "height_px": 22, "yaw_deg": 170, "offset": [-0.2, 0, 0]}),
]

PARSE_CASES = [
    '{"anchor": [10, 20], "height_px": 50}',
    '{"anchor": [10.5, 20], "height_px": 50, "yaw_deg": -30, "pitch_deg": 5, "roll_deg": 1, '
    '"offset": [0.1, 0, -0.2], "top_k": 128}',
    '{"anchor": [10, 20]}',
    '{"anchor": [10, 20], "height_px": 0}',
    '{"anchor": [10, 20], "height_px": -3}',
    '{"anchor": [10], "height_px": 50}',
    '{"anchor": [10, "a"], "height_px": 50}',
    '{"anchor": [10, 20], "height_px": 50, "top_k": 2}',
    '{"anchor": [10, 20], "height_px": 50, "top_k": 5000}',
    '{"anchor": [10, 20], "height_px": 50, "top_k": true}',
    '{"anchor": [10, 20], "height_px": 50, "scale": 2}',
    '{"anchor": [10, 20], "height_px": true}',
    '{"anchor": [10, 20], "height_px": 50, "yaw_deg": null}',
    '{"anchor": [10, 20], "height_px": 50, "offset": [0, 0]}',
    '[1, 2]',
    '{"anchor": [10, 20], "height_px": 50',
]


def build_fixture() -> dict:
    """Python placement results for the JS test: surfaces, poses, projected points, parse verdicts."""
    depths = fixture_depths()
    cases = []
    for name, raw in PLACEMENTS:
        placement = parse_placement(raw)
        depth = depths[name]
        point, normal, _ = surface_plane(depth, K, placement.anchor, plane_radius(placement.height_px))
        pose, frame = placement_pose(placement, depth, K)
        uv, z = project(transform(pose, np.array(CANONICAL_POINTS, np.float64)), K)
        cases.append({
            "scene": name,
            "placement": raw,
            "surface": {"point": point.tolist(), "normal": normal.tolist()},
            "expected": {
                "camera_from_object": pose.tolist(),
                "height": frame.height,
                "right": frame.right.tolist(), "up": frame.up.tolist(), "forward": frame.forward.tolist(),
                "projected": np.concatenate([uv, z[:, None]], 1).tolist(),
            },
        })
    parse = []
    for text in PARSE_CASES:
        try:
            parse.append({"text": text, "ok": True, "value": parse_placement(text).to_dict()})
        except InsertAnywhereError as exc:
            parse.append({"text": text, "ok": False, "error": str(exc)})
    return {"K": K.tolist(), "canonical_points": CANONICAL_POINTS, "cases": cases, "parse": parse}


def test_committed_fixture_matches_python_placement():
    """If this fails, placement.py changed: regenerate the fixture (module docstring) and rerun node --test."""
    stored = json.loads(FIXTURE.read_text())
    fresh = build_fixture()
    assert stored["parse"] == fresh["parse"]
    assert len(stored["cases"]) == len(fresh["cases"])
    for a, b in zip(stored["cases"], fresh["cases"]):
        assert a["placement"] == b["placement"]
        for key in ("point", "normal"):
            np.testing.assert_allclose(a["surface"][key], b["surface"][key], atol=1e-9)
        np.testing.assert_allclose(a["expected"]["camera_from_object"], b["expected"]["camera_from_object"],
                                   atol=1e-9)
        np.testing.assert_allclose(a["expected"]["projected"], b["expected"]["projected"], atol=1e-6)


def test_fixture_covers_the_fallback_and_the_tray():
    """The overhead case must take surface_frame's fallback (forward = image down), and the
    anchor on the tray must find the tray's plane, not the floor below it."""
    fixture = build_fixture()
    overhead = fixture["cases"][3]["expected"]
    np.testing.assert_allclose(overhead["forward"], [0, 1, 0], atol=1e-6)
    tray = fixture["cases"][2]["surface"]["point"]
    floor_z = fixture_depths()["floor"][45, 50]
    assert tray[2] < 0.97 * floor_z


# ----------------------------------------------------------------------------- previews


def _box_object(n: int = 6) -> Object3D:
    """A unit-height box mesh, canonical frame (base at y = 0), coloured red."""
    import trimesh

    box = trimesh.creation.box(extents=(0.6, 1.0, 0.6))
    box = box.subdivide().subdivide() if n > 4 else box
    vertices = np.asarray(box.vertices, np.float32) + np.array([0, 0.5, 0], np.float32)
    colors = np.tile(np.array([220, 30, 30], np.uint8), (len(vertices), 1))
    return Object3D(vertices, np.asarray(box.faces, np.int32), colors)


def _floor_scene(num_frames: int = 3, width: int = 160, height: int = 96, occluder: bool = False,
                 slide: float = 0.0) -> SceneRecord:
    """A floor seen obliquely by a static camera. With `occluder`, a near wall covers the left
    half of the image from frame 1 on; with `slide`, the floor (marked moving) slides by that
    many scene units along camera x per frame (the plane maps onto itself, so depth stays).
    Flow is exact: a point at depth z moves fx * slide / z pixels to the right."""
    Kf = np.array([[130.0, 0, (width - 1) / 2], [0, 130.0, (height - 1) / 2], [0, 0, 1]])
    floor_n = np.array([0.0, -np.cos(np.radians(35)), -np.sin(np.radians(35))])
    depth0 = plane_depth(floor_n, -1.2, width, height, Kf).astype(np.float32)
    depth = np.repeat(depth0[None], num_frames, 0)
    if occluder:
        depth[1:, :, : width // 2] = 0.5
    u, v = pixel_grid(height, width)
    points = unproject(u, v, depth0.astype(np.float64), Kf)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):  # a checker painted on the floor, sliding with it
        checker = (np.floor((points[..., 0] - slide * t) / 0.06) + np.floor(points[..., 2] / 0.06)) % 2
        frames[t] = (checker * 80 + 60).astype(np.uint8)[..., None]
    step = np.zeros((height, width, 2), np.float32)
    step[..., 0] = Kf[0, 0] * slide / depth0
    flow_fwd = np.repeat(step[None], num_frames - 1, 0).astype(np.float16)
    return SceneRecord(frames=frames, depth=depth, K=Kf.astype(np.float32),
                       camera_from_world=np.repeat(np.eye(4, dtype=np.float32)[None], num_frames, 0),
                       moving=np.full((num_frames, height, width), slide != 0.0), flow_fwd=flow_fwd,
                       flow_bwd=-flow_fwd, flow_valid=np.ones((num_frames - 1, height, width), bool))


def _red(image: np.ndarray) -> np.ndarray:
    return (image[..., 0] > 150) & (image[..., 1] < 90) & (image[..., 2] < 90)


def test_preview_draws_object_where_placement_puts_it():
    scene = _floor_scene()
    obj = _box_object()
    session = EditorSession(scene, obj)
    placement = {"anchor": [80, 70], "height_px": 30}
    image, meta = session.preview(placement, frame=0, max_side=160)
    assert image.shape == (96, 160, 3)
    ys, xs = np.nonzero(_red(image))
    # The red pixels fill the box's projected extent under placement_pose.
    pose, _ = placement_pose(placement, scene.depth[0], scene.K)
    uv, _ = project(transform(pose, obj.vertices.astype(np.float64)), scene.K.astype(np.float64))
    np.testing.assert_allclose([xs.min(), xs.max(), ys.min(), ys.max()],
                               [uv[:, 0].min(), uv[:, 0].max(), uv[:, 1].min(), uv[:, 1].max()], atol=1.5)
    assert 28 <= uv[:, 1].max() - uv[:, 1].min() <= 45  # about height_px tall (seen a little from above)
    assert meta["visible_px"] == meta["amodal_px"] > 200
    np.testing.assert_allclose(meta["anchor_px"], [80, 70], atol=0.6)


def test_preview_scales_and_agrees_with_full_resolution():
    session = EditorSession(_floor_scene(), _box_object())
    placement = {"anchor": [80, 70], "height_px": 30}
    full, _ = session.preview(placement, 0, 160)
    half, meta = session.preview(placement, 0, 80)
    assert half.shape == (48, 80, 3) and meta["scale"] == 0.5
    small = _red(full).reshape(48, 2, 80, 2).mean((1, 3)) > 0.5
    iou = (small & _red(half)).sum() / (small | _red(half)).sum()
    assert iou > 0.8


def test_preview_later_frame_shows_occlusion():
    """Frame 1 has a near wall over the left half: an object placed on the left is hidden
    (tinted), one placed on the right stays visible; the track keeps its pose (static support)."""
    session = EditorSession(_floor_scene(occluder=True), _box_object())
    left, meta_left = session.preview({"anchor": [40, 70], "height_px": 24}, frame=1, max_side=160)
    right, meta_right = session.preview({"anchor": [120, 70], "height_px": 24}, frame=1, max_side=160)
    assert meta_left["amodal_px"] > 150 and meta_left["visible_px"] == 0
    assert meta_right["visible_px"] == meta_right["amodal_px"] > 150
    assert not _red(left).any() and _red(right).sum() > 100


def test_preview_follows_a_moving_support():
    """The floor slides 0.02 units right per frame: in frame 4 the object and its anchor marker
    have moved fx * 0.08 / z pixels right, and the object's pixels moved with it."""
    scene = _floor_scene(num_frames=5, slide=0.02)
    session = EditorSession(scene, _box_object())
    placement = {"anchor": [60, 70], "height_px": 30}
    first, meta0 = session.preview(placement, 0, 160)
    last, meta4 = session.preview(placement, 4, 160)
    shift = 130.0 * 0.08 / float(scene.depth[0][70, 60])
    assert meta4["moving"] and shift > 5
    assert meta4["anchor_px"][0] - meta0["anchor_px"][0] == pytest.approx(shift, abs=0.5)
    assert meta4["anchor_px"][1] == pytest.approx(meta0["anchor_px"][1], abs=0.5)
    assert np.nonzero(_red(last))[1].mean() - np.nonzero(_red(first))[1].mean() == pytest.approx(shift, abs=1.0)


def test_prefetch_propagates_in_background_and_cancels_stale_jobs():
    scene = _floor_scene(num_frames=9, slide=0.01)
    session = EditorSession(scene, _box_object())
    a = parse_placement({"anchor": [60, 70], "height_px": 30})
    b = parse_placement({"anchor": [100, 70], "height_px": 30})
    assert session.prefetch(a)
    assert session.prefetch(b)  # supersedes a: its job is cancelled (or already done)
    assert not session.prefetch(b)  # already running or cached
    _, meta = session.preview(b, 8, 160)  # waits for b's job instead of propagating twice
    assert session.track_ready(b) and meta["support"] > 0
    assert len(session._jobs) == 0 or all(job.cancelled for job in session._jobs.values())


def test_surface_matches_placement_pose():
    scene = _floor_scene()
    session = EditorSession(scene, _box_object())
    surf = session.surface([80, 70], 30)
    pose, frame = placement_pose({"anchor": [80, 70], "height_px": 30}, scene.depth[0], scene.K)
    np.testing.assert_allclose(surf["point"], frame.point, atol=1e-12)
    np.testing.assert_allclose(surf["up"], frame.up, atol=1e-12)
    assert surf["radius"] == 15 and surf["inlier_ratio"] > 0.99
    on_plane = np.array([s[2] for s in surf["samples"]])
    assert len(on_plane) > 50 and on_plane.mean() > 0.99


@pytest.mark.parametrize("body, message", [
    ({}, "lacks 'placement'"),
    ({"placement": "{oops"}, "not valid JSON"),
    ({"placement": {"anchor": [1, 2], "height_px": 10}, "frame": 99}, "'frame' is 99"),
    ({"placement": {"anchor": [1, 2], "height_px": 10}, "frame": "1"}, "'frame' is '1'"),
    ({"placement": {"anchor": [1, 2], "height_px": 10}, "max_side": 10}, "'max_side' is 10"),
    ({"placement": {"anchor": [500, 2], "height_px": 10}}, "outside frame 0"),
])
def test_preview_request_rejects_bad_input(body, message):
    session = EditorSession(_floor_scene(), _box_object())
    with pytest.raises(InsertAnywhereError, match=message):
        session.preview_request(body)


def test_preview_request_answers_jpeg_and_info_is_json():
    session = EditorSession(_floor_scene(), _box_object())
    jpeg, meta = session.preview_request({"placement": '{"anchor": [80, 70], "height_px": 30}', "frame": 2})
    assert jpeg[:2] == b"\xff\xd8" and meta["frame"] == 2
    info = json.loads(json.dumps(session.info()))
    assert (info["width"], info["height"], info["num_frames"]) == (160, 96, 3)
    assert len(info["object"]["points"]) == len(info["object"]["colors"]) <= 1500
    assert session.frame0_jpeg()[:2] == b"\xff\xd8"


def test_scaled_intrinsics_keep_pixel_centres():
    Ks = scaled_intrinsics(K, 0.5)
    # The image's corner pixel centres (-0.5 edge convention) map to the scaled image's edges.
    assert Ks[0, 2] == pytest.approx((47.5 + 0.5) * 0.5 - 0.5)
    assert encode_jpeg(np.zeros((4, 4, 3), np.uint8))[:2] == b"\xff\xd8"


if __name__ == "__main__":
    if "--write" in sys.argv:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(build_fixture(), indent=1) + "\n")
        print(f"wrote {FIXTURE}")
