"""Issue #11 point 4, no hangs: heavy meshes are simplified on load, rasterisation costs what it
covers (culling, row spans), long renders report progress and stop on Cancel, and the CLI
checks the object, placement and anchor before reconstructing."""

from __future__ import annotations

import numpy as np
import pytest

import insertanywhere.masks.reconstruct as reconstruct_module
import insertanywhere.masks.reproject as reproject_module
from insertanywhere import cli
from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks.geometry import make_pose, project, rot_y, transform
from insertanywhere.masks.object3d import (MAX_FACES, MAX_LAYERS, load_mesh, mesh_layers, normalise_vertices,
                                           object_from_trimesh, simplify_mesh)
from insertanywhere.masks.placement import place_object
from insertanywhere.masks.reproject import rasterize, render_object, reproject
from insertanywhere.masks.scene import ObjectTrack
from insertanywhere.sample_scene import make_scene, write_triangle_soup


def reference_rasterize(points, faces, K, size):
    """The plain algorithm, triangle by triangle over its bounding box (clipped to the image) in
    full-image coordinates, no other culling: (depth [H, W] with inf where empty, pixel centres inside, summed
    over triangles)."""
    height, width = size
    uv, z = project(np.asarray(points, np.float64), K)
    depth = np.full(size, np.inf)
    inside_total = 0
    for f in faces:
        if (z[f] <= 1e-9).any():
            continue
        (ax, ay), (bx, by), (cx, cy) = uv[f]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) <= 1e-12:
            continue
        xs = np.arange(max(0, int(np.ceil(uv[f, 0].min()))), min(width - 1, int(np.floor(uv[f, 0].max()))) + 1)
        ys = np.arange(max(0, int(np.ceil(uv[f, 1].min()))), min(height - 1, int(np.floor(uv[f, 1].max()))) + 1)
        px, py = np.meshgrid(xs.astype(float), ys.astype(float))
        l0 = ((cx - bx) * (py - by) - (cy - by) * (px - bx)) / area
        l1 = ((ax - cx) * (py - cy) - (ay - cy) * (px - cx)) / area
        l2 = 1 - l0 - l1
        inside = (l0 >= -1e-7) & (l1 >= -1e-7) & (l2 >= -1e-7)
        inside_total += int(inside.sum())
        zz = 1.0 / (l0 / z[f[0]] + l1 / z[f[1]] + l2 / z[f[2]])
        iy, ix = py[inside].astype(int), px[inside].astype(int)
        np.minimum.at(depth, (iy, ix), zz[inside])
    return depth, inside_total


@pytest.fixture(scope="module")
def sample_object():
    return object_from_trimesh(make_scene("static", num_frames=2, width=64, height=48).object_mesh)


def test_a_100k_triangle_soup_is_simplified_to_the_face_budget_with_a_message(tmp_path):
    path = write_triangle_soup(tmp_path / "soup.stl", 100_000, 0.01)
    assert path.stat().st_size > 4_000_000  # the 5 MB file of the issue
    obj = load_mesh(path)
    assert 0 < len(obj.faces) <= MAX_FACES
    assert obj.faces.max() < len(obj.vertices) == len(obj.colors)
    # still in the canonical frame: base at y = 0, unit height
    assert obj.vertices[:, 1].min() == pytest.approx(0, abs=1e-6)
    assert np.ptp(obj.vertices[:, 1]) == pytest.approx(1, abs=1e-6)
    (message,) = obj.warnings
    for part in ("soup.stl", "100000 triangles", f"face budget of {MAX_FACES}", f"simplified to {len(obj.faces)}",
                 "max_faces", "--max-faces"):
        assert part in message
    # the budget is the caller's: a larger one keeps every triangle
    assert len(load_mesh(path, max_faces=200_000).faces) == 100_000
    with pytest.raises(InsertAnywhereError, match="max_faces"):
        load_mesh(path, max_faces=0)


def test_a_soup_of_large_overlapping_triangles_is_simplified_and_renders_boundedly(tmp_path):
    import trimesh

    path = write_triangle_soup(tmp_path / "big.stl", 20_000, None)
    raw = trimesh.load(path, process=False)
    raw_vertices, _ = normalise_vertices(raw.vertices, "soup")
    assert mesh_layers(raw_vertices, raw.faces) > 20 * MAX_LAYERS  # thousands of triangles over each pixel
    obj = load_mesh(path, max_faces=10**7)  # not the face budget: the layers
    assert len(obj.faces) > 0 and mesh_layers(obj.vertices, obj.faces) <= MAX_LAYERS
    assert "not a surface" in obj.warnings[0]
    # 300 px tall, front view: the pixel tests stay within MAX_LAYERS x the object's window,
    # where the raw soup needs thousands of tests per pixel
    K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
    pose = make_pose(np.diag([1.0, -1.0, -1.0]), [0.0, 0.5, 2.0])
    render = render_object(obj, pose, K, (480, 640))
    y0, y1, x0, x1 = render.box
    assert render.mask.sum() > 20_000
    assert render.pixel_tests <= MAX_LAYERS * (y1 - y0) * (x1 - x0)
    uv, _ = project(transform(pose, raw_vertices.astype(np.float64)), K)
    tri = uv[raw.faces]
    raw_area = 0.5 * np.abs(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])).sum()
    assert raw_area > 50 * render.pixel_tests  # the raw soup would test at least its triangles' area


def _camera_points(obj, pose):
    return transform(pose, obj.vertices.astype(np.float64)), obj.faces


def test_rasterising_the_simplified_soup_tests_each_covered_pixel_about_once(tmp_path, sample_object):
    """The row spans test pixel centres inside the triangle plus at most a couple per row, not
    the triangle's bounding box; the count equals the reference's inside count plus that slack."""
    obj = load_mesh(write_triangle_soup(tmp_path / "soup.stl", 100_000, 0.01))
    K = np.array([[300.0, 0, 160], [0, 300, 96], [0, 0, 1]])
    for mesh, distance in ((obj, 2.0), (sample_object, 1.5)):
        pose = make_pose(np.diag([1.0, -1.0, -1.0]) @ rot_y(30), [0.0, 0.5, distance])
        points, faces = _camera_points(mesh, pose)
        render = rasterize(points, faces, K, (192, 320))
        _, inside = reference_rasterize(points, faces, K, (192, 320))
        uv, _ = project(points, K)
        rows = np.clip(np.floor(uv[faces, 1].max(1)), -1, 191) - np.clip(np.ceil(uv[faces, 1].min(1)), 0, 192) + 1
        slack = 2 * int(np.maximum(rows, 0).sum())
        assert inside <= render.pixel_tests <= inside + slack
        bbox = ((np.floor(uv[faces, 0].max(1)) - np.ceil(uv[faces, 0].min(1)) + 1).clip(0) * rows.clip(0)).sum()
        assert render.pixel_tests < 0.8 * bbox  # the old rasteriser tested every bounding-box pixel


@pytest.mark.parametrize("shift", [-0.45, 0.0, 0.6])
def test_culling_keeps_the_on_screen_part_identical(sample_object, shift):
    """Half off-screen (left, right) or whole, and partly behind the camera: the render equals
    the plain per-triangle algorithm on every pixel."""
    K = np.array([[200.0, 0, 80], [0, 200, 60], [0, 0, 1]])
    size = (120, 160)
    pose = make_pose(np.diag([1.0, -1.0, -1.0]) @ rot_y(20), [shift, 0.4, 1.2])
    points, faces = _camera_points(sample_object, pose)
    render = rasterize(points, faces, K, size)
    depth, _ = reference_rasterize(points, faces, K, size)
    assert render.mask.sum() > 1000
    assert (render.mask == np.isfinite(depth)).mean() > 0.9995  # round-off at an edge may flip a pixel
    both = render.mask & np.isfinite(depth)
    np.testing.assert_allclose(render.depth[both], depth[both], rtol=1e-5)
    if shift:
        assert render.culled > 0  # the off-screen triangles never reached the pixel stage
    # through the near plane: the triangles touching it are dropped, the rest unchanged
    behind = points.copy()
    behind[:, 2] -= np.percentile(points[:, 2], 30)
    render = rasterize(behind, faces, K, size)
    depth, _ = reference_rasterize(behind, faces, K, size)
    assert (render.mask == np.isfinite(depth)).mean() > 0.9995


def test_chunks_report_progress_and_a_raising_callback_cancels(monkeypatch, sample_object):
    monkeypatch.setattr(reproject_module, "MAX_CANDIDATES", 2000)
    K = np.array([[300.0, 0, 160], [0, 300, 96], [0, 0, 1]])
    pose = make_pose(np.diag([1.0, -1.0, -1.0]), [0.0, 0.5, 1.5])
    calls = []
    render_object(sample_object, pose, K, (192, 320), progress=lambda done, total: calls.append((done, total)))
    assert len(calls) > 5 and calls[-1][0] == calls[-1][1] <= len(sample_object.faces)  # (faces done, faces)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    class Cancelled(Exception):
        pass

    seen = []

    def cancel_on_third(done, total):
        seen.append(done)
        if len(seen) == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        render_object(sample_object, pose, K, (192, 320), progress=cancel_on_third)


def test_place_and_reproject_stop_on_cancel_within_a_frame(monkeypatch, sample_object):
    monkeypatch.setattr(reproject_module, "MAX_CANDIDATES", 1000)
    scene = make_scene("static", num_frames=3, width=160, height=96)
    record = scene.to_scene_record()

    class Cancelled(Exception):
        pass

    calls = []

    def cancel(done, total):
        calls.append((done, total))
        if len(calls) == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        place_object(scene.placement, sample_object, record.frames[0], record.depth[0], record.K,
                     record.camera_from_world[0], progress=cancel)
    pose, _, _ = place_object(scene.placement, sample_object, record.frames[0], record.depth[0], record.K,
                              record.camera_from_world[0])
    track = ObjectTrack(np.repeat(pose[None], 3, 0))
    calls.clear()
    with pytest.raises(Cancelled):
        reproject(record, sample_object, track, progress=cancel)
    assert calls == [(0, 3), (0, 3)]  # stopped inside frame 0, before it finished


@pytest.fixture
def video_bundle(tmp_path):
    scene = make_scene("static", num_frames=5, width=96, height=64)
    return scene, scene.write_bundle(tmp_path / "bundle")


@pytest.fixture
def no_reconstruction(monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("reconstruct was called before the inputs were checked")

    monkeypatch.setattr(reconstruct_module, "reconstruct", refuse)


def _cli(folder, tmp_path, mesh, placement='{"anchor": [48, 40], "height_px": 20}'):
    (tmp_path / "placement.json").write_text(placement)
    return cli.main(["masks", "--video", str(folder / "scene.mp4"), "--object-mesh", str(mesh),
                     "--placement", str(tmp_path / "placement.json"), "--out", str(tmp_path / "out")])


def test_cli_refuses_a_bad_mesh_before_decoding_or_reconstructing(tmp_path, video_bundle, no_reconstruction,
                                                                   monkeypatch, capsys):
    import insertanywhere.video as video_module

    _, folder = video_bundle
    monkeypatch.setattr(video_module, "read_video", lambda *_, **__: pytest.fail("decoded before the mesh check"))
    bad = tmp_path / "flat.stl"
    bad.write_text("solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 0 1\n"
                   "endloop\nendfacet\nendsolid x\n")
    assert _cli(folder, tmp_path, bad) == 2
    assert "has no height along +Y" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_an_anchor_outside_the_frame_before_reconstructing(tmp_path, video_bundle, no_reconstruction,
                                                                         capsys):
    _, folder = video_bundle
    assert _cli(folder, tmp_path, folder / "object.ply", '{"anchor": [500, 40], "height_px": 20}') == 2
    assert "The anchor (500.0, 40.0) is outside frame 0 (96x64)" in capsys.readouterr().err


def test_cli_says_when_it_simplified_the_mesh(tmp_path, video_bundle, no_reconstruction, capsys):
    _, folder = video_bundle
    soup = write_triangle_soup(tmp_path / "soup.stl", 3000, 0.03)
    (tmp_path / "placement.json").write_text('{"anchor": [48, 40], "height_px": 20}')
    with pytest.raises(AssertionError, match="reconstruct was called"):  # got as far as reconstructing
        cli.main(["masks", "--video", str(folder / "scene.mp4"), "--object-mesh", str(soup), "--max-faces", "1000",
                  "--placement", str(tmp_path / "placement.json"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "note: Mesh 'soup.stl' has 3000 triangles over the face budget of 1000; simplified to" in err


def test_simplify_keeps_a_surface_mesh_recognisable():
    """A finely meshed object (the sample vase, each triangle split in 16) clustered to a
    third of its triangles keeps its silhouette (IoU > 0.96; 0.94 at a sixth)."""
    fine = object_from_trimesh(make_scene("static", num_frames=2, width=64, height=48).object_mesh
                               .subdivide().subdivide())
    budget = len(fine.faces) // 3
    vertices, faces, colors = simplify_mesh(fine.vertices, fine.faces, fine.colors, budget)
    assert 0 < len(faces) <= budget and len(colors) == len(vertices)
    K = np.array([[300.0, 0, 80], [0, 300, 80], [0, 0, 1]])
    pose = make_pose(np.diag([1.0, -1.0, -1.0]) @ rot_y(35), [0.0, 0.5, 2.5])
    before = render_object(fine, pose, K, (160, 160)).mask
    after = render_object(type(fine)(vertices, faces, colors), pose, K, (160, 160)).mask
    assert (before & after).sum() / (before | after).sum() > 0.96
