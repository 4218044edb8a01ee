"""Reproject: exact rasterisation, splats with holes closed, the z-test and the ablation switch."""

import numpy as np
import pytest

from insertanywhere.masks.geometry import make_pose, rot_x
from insertanywhere.masks.object3d import Object3D
from insertanywhere.masks.reproject import Render, rasterize, render_object, splat, visible_mask

K = np.array([[100.0, 0, 49.5], [0, 100.0, 39.5], [0, 0, 1]])
SIZE = (80, 100)


def quad(x0, x1, y0, y1, z):
    pts = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], float)
    return pts, np.array([[0, 1, 2], [0, 2, 3]])


def test_rasterised_square_covers_exactly_the_pixel_centres_inside():
    # x from -0.2 to 0.3 at z = 2 spans u = 39.5 .. 64.5 -> pixels 40..64 (25 columns);
    # y from -0.1 to 0.15 spans v = 34.5 .. 47 -> rows 35..47 (13 rows, 47 on the edge counts).
    pts, faces = quad(-0.2, 0.3, -0.1, 0.15, 2.0)
    r = rasterize(pts, faces, K, SIZE, np.tile([[10, 20, 30]], (4, 1)).astype(np.uint8))
    cols = np.nonzero(r.mask.any(0))[0]
    rows = np.nonzero(r.mask.any(1))[0]
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (40, 64, 35, 47)
    assert r.mask.sum() == 25 * 13
    np.testing.assert_allclose(r.depth[r.mask], 2.0, rtol=1e-6)
    shade = r.color[r.mask].astype(float) / [10, 20, 30]
    assert np.allclose(shade, shade[0, 0], atol=0.1) and 0.55 <= shade[0, 0] <= 1.0


def test_depth_is_perspective_correct_and_nearest_wins():
    # A floor-like tilted quad: depth along a row is constant, along the image varies as 1/v.
    pts = np.array([[-1, 0.5, 1.0], [1, 0.5, 1.0], [1, 0.5, 5.0], [-1, 0.5, 5.0]])
    r = rasterize(pts, np.array([[0, 1, 2], [0, 2, 3]]), K, SIZE)
    v = np.arange(SIZE[0])[:, None].repeat(SIZE[1], 1).astype(float)
    expected = 0.5 * K[1, 1] / (v - K[1, 2])
    ok = r.mask
    assert ok.sum() > 500
    np.testing.assert_allclose(r.depth[ok], expected[ok], rtol=1e-5)
    # a nearer square in front wins the z-buffer
    near, f2 = quad(-0.1, 0.1, 0.0, 0.3, 1.5)
    both = rasterize(np.concatenate([pts, near]), np.concatenate([[[0, 1, 2], [0, 2, 3]], f2 + 4]), K, SIZE)
    inner = rasterize(near, f2, K, SIZE).mask
    np.testing.assert_allclose(both.depth[inner], 1.5, rtol=1e-6)


def test_triangles_behind_the_camera_are_dropped():
    pts, faces = quad(-0.2, 0.2, -0.2, 0.2, -1.0)
    assert not rasterize(pts, faces, K, SIZE).mask.any()


def test_splats_close_holes_and_match_the_mesh():
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(np.linspace(-0.2, 0.3, 40), np.linspace(-0.1, 0.15, 20)), -1).reshape(-1, 2)
    pts = np.column_stack([grid + rng.normal(0, 0.002, grid.shape), np.full(len(grid), 2.0)])
    cloud = Object3D(pts.astype(np.float32), None, np.full((len(pts), 3), 200, np.uint8))
    rendered = render_object(cloud, np.eye(4), K, SIZE)
    mesh = rasterize(*quad(-0.2, 0.3, -0.1, 0.15, 2.0), K, SIZE)
    iou = (rendered.mask & mesh.mask).sum() / (rendered.mask | mesh.mask).sum()
    assert iou > 0.85
    filled = rendered.mask[36:46, 42:62]
    assert filled.all()  # no holes inside
    no_close = splat(pts, K, SIZE, radius=0)
    assert rendered.mask.sum() >= no_close.mask.sum()


def test_visible_mask_z_test_and_invalid_depth():
    depth = np.full((4, 4), 3.0)
    depth[0] = 1.0       # an occluder in front
    depth[1] = np.nan    # no depth never occludes
    depth[2] = 2.04      # the contact with the support (within the tolerance)
    render = Render(np.full((4, 4), 2.0, np.float32), np.zeros((4, 4, 3), np.uint8))
    vis = visible_mask(render, depth)
    assert not vis[0].any() and vis[1:].all()
    assert visible_mask(render, depth, tolerance=0.0)[2].sum() == 4


def test_render_object_applies_similarity():
    pts, faces = quad(-0.5, 0.5, 0.0, 1.0, 0.0)
    obj = Object3D(pts.astype(np.float32), faces, np.full((4, 3), 255, np.uint8))
    pose = make_pose(rot_x(180), [0.0, 0.2, 4.0], scale=0.4)  # upside down in the camera: canonical +Y up
    r = render_object(obj, pose, K, SIZE)
    rows = np.nonzero(r.mask.any(1))[0]
    assert rows.max() == pytest.approx(39.5 + 100 * 0.2 / 4, abs=1)
    assert len(rows) == pytest.approx(100 * 0.4 / 4, abs=1.5)


def test_point_cloud_object_matches_the_mesh_on_a_scene():
    """A surface sample of the sample scene's mesh (no faces) rendered with automatic splats
    covers the ground-truth silhouette almost as well as the mesh itself."""
    import trimesh

    from insertanywhere.masks.object3d import object_from_trimesh
    from insertanywhere.masks.pipeline import masks_from_scene
    from insertanywhere.masks.placement import parse_placement
    from insertanywhere.sample_scene import make_scene

    s = make_scene("static", num_frames=3, width=320, height=192, seed=4)
    points, _ = trimesh.sample.sample_surface(s.object_mesh, 6000, seed=0)
    cloud = object_from_trimesh(trimesh.PointCloud(points))
    assert not cloud.is_mesh
    result = masks_from_scene(s.to_scene_record(), cloud, parse_placement(s.placement))
    for t in range(3):
        iou = (result.amodal[t] & s.gt_amodal[t]).sum() / (result.amodal[t] | s.gt_amodal[t]).sum()
        assert iou > 0.85


def test_chunked_rasterisation_matches(monkeypatch):
    import insertanywhere.masks.reproject as reproject_module

    rng = np.random.default_rng(2)
    pts = np.column_stack([rng.uniform(-1, 1, (60, 2)), rng.uniform(1.5, 3, 60)])
    faces = rng.integers(0, 60, (80, 3))
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    colors = rng.integers(0, 255, (60, 3)).astype(np.uint8)
    whole = rasterize(pts, faces, K, SIZE, colors)
    monkeypatch.setattr(reproject_module, "MAX_CANDIDATES", 500)
    chunked = rasterize(pts, faces, K, SIZE, colors)
    assert whole.mask.sum() > 2000
    np.testing.assert_array_equal(whole.depth, chunked.depth)
    np.testing.assert_array_equal(whole.color, chunked.color)


def _drifting_floor(drift_per_frame: float, num_frames: int = 9):
    """The editor tests' oblique floor, with the scene depth of frame t scaled by
    (1 - drift_per_frame * t), as monocular depth drifts between frames."""
    from dataclasses import replace

    from test_editor_preview import _floor_scene

    scene = _floor_scene(num_frames=num_frames)
    factors = 1.0 - drift_per_frame * np.arange(num_frames, dtype=np.float32)
    return replace(scene, depth=scene.depth * factors[:, None, None])


def _placed_box(scene):
    from test_editor_preview import _box_object

    from insertanywhere.masks.placement import parse_placement, placement_pose
    from insertanywhere.masks.propagate import propagate

    placement = parse_placement({"anchor": [80, 70], "height_px": 30})
    pose, surface = placement_pose(placement, scene.depth[0], scene.K)
    track = propagate(scene, pose, surface.point, 64, placement.height_px, enabled=False)
    return _box_object(), track


def test_the_object_stays_on_its_support_when_the_depth_drifts():
    from dataclasses import replace

    from insertanywhere.masks.reproject import reproject

    scene = _drifting_floor(0.006, num_frames=17)  # nearly 10% nearer by the last frame
    obj, track = _placed_box(scene)
    assert track.support is not None and len(track.support) >= 32
    plain = reproject(scene, obj, replace(track, support=None))
    held = reproject(scene, obj, track)
    last = scene.num_frames - 1
    # without the contact check the box sinks into the floor: its base is hidden
    assert plain.visible[last].sum() < 0.93 * plain.amodal[last].sum()
    assert held.visible[last].sum() >= 0.98 * held.amodal[last].sum()
    np.testing.assert_array_equal(held.amodal, plain.amodal)


def test_contact_scale_moves_slowly_and_ignores_what_covers_the_support():
    from insertanywhere.masks.reproject import CONTACT_STEP, contact_scales

    scene = _drifting_floor(0.0)
    obj, track = _placed_box(scene)
    cameras = np.asarray(scene.camera_from_world, np.float64) @ track.world_from_object
    np.testing.assert_allclose(contact_scales(scene, cameras, track.support), 1.0, atol=1e-3)
    scene.depth[4:] *= 0.93  # something 7% nearer covers the whole support from frame 4
    scales = contact_scales(scene, cameras, track.support)
    assert np.abs(np.diff(scales)).max() <= CONTACT_STEP + 1e-9
    assert scales[-1] >= 1.0 - 5 * CONTACT_STEP - 1e-3
    assert (contact_scales(scene, cameras, None) == 1.0).all()
