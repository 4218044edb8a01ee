"""Object to 3D: meshes of every supported type and image + mask reliefs, in the canonical frame."""

import numpy as np
import pytest
import trimesh
from PIL import Image

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks.geometry import transform
from insertanywhere.masks.object3d import load_mesh, object_from_image, object_from_trimesh


def coloured_box():
    """A 2 x 4 x 1 box whose base sits at y = 3 (so normalising must move and scale it), red."""
    box = trimesh.creation.box(extents=(2.0, 4.0, 1.0))
    box.apply_translation((5.0, 5.0, -2.0))
    box.visual.vertex_colors = np.tile([200, 30, 20, 255], (len(box.vertices), 1))
    return box


def assert_canonical(obj):
    v = obj.vertices
    assert v[:, 1].min() == pytest.approx(0, abs=1e-6) and v[:, 1].max() == pytest.approx(1, abs=1e-6)
    assert (v[:, 0].min() + v[:, 0].max()) == pytest.approx(0, abs=1e-6)
    assert (v[:, 2].min() + v[:, 2].max()) == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".stl", ".glb"])
def test_mesh_files_load_normalised(tmp_path, suffix):
    path = tmp_path / f"box{suffix}"
    coloured_box().export(path)
    obj = load_mesh(path)
    assert obj.is_mesh and obj.faces.shape[1] == 3 and len(obj.colors) == len(obj.vertices)
    assert_canonical(obj)
    # unit height: the 4-unit tall box becomes 1 tall, 0.5 wide, 0.25 deep
    extent = obj.vertices.max(0) - obj.vertices.min(0)
    np.testing.assert_allclose(extent, [0.5, 1.0, 0.25], atol=1e-6)
    # object_from_source maps the file's coordinates to the canonical ones
    np.testing.assert_allclose(transform(obj.object_from_source, np.array([[5.0, 3.0, -2.0]])), [[0, 0, 0]],
                               atol=1e-6)
    if suffix != ".stl":  # STL has no colour
        assert np.abs(obj.colors.astype(int) - [200, 30, 20]).max() <= 2


def test_texture_is_sampled_into_vertex_colours(tmp_path):
    # A quad standing in the x-y plane, textured left half blue, right half yellow.
    verts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[:, :4] = (0, 0, 255)
    tex[:, 4:] = (255, 255, 0)
    mesh = trimesh.Trimesh(verts, faces, process=False,
                           visual=trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(tex)))
    path = tmp_path / "quad.glb"
    mesh.export(path)
    obj = load_mesh(path)
    assert len(obj.vertices) > 50  # subdivided so the texture's detail reaches the vertices
    left = obj.colors[obj.vertices[:, 0] < -0.2].astype(int)
    right = obj.colors[obj.vertices[:, 0] > 0.2].astype(int)
    assert (left[:, 2] > 200).mean() > 0.9 and (left[:, 0] < 60).mean() > 0.9
    assert (right[:, 0] > 200).mean() > 0.9 and (right[:, 2] < 60).mean() > 0.9


def test_point_cloud_file_is_a_splat_object(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, (500, 3)) * [1, 2, 1]
    trimesh.PointCloud(pts, colors=np.tile([10, 200, 10, 255], (500, 1))).export(tmp_path / "cloud.ply")
    obj = load_mesh(tmp_path / "cloud.ply")
    assert not obj.is_mesh and len(obj.vertices) == 500
    assert_canonical(obj)
    assert 0 < obj.point_spacing() < 0.2


@pytest.mark.parametrize("make, message", [
    (lambda p: trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 0, 1]], [[0, 1, 2]]).export(p / "flat.ply"), "no height"),
    (lambda p: (p / "bad.obj").write_text("this is not a mesh"), "no triangles|Cannot read"),
    (lambda p: (p / "mesh.fbx").write_text("x"), "unsupported"),
])
def test_bad_meshes_raise(tmp_path, make, message):
    make(tmp_path)
    path = next(tmp_path.iterdir())
    with pytest.raises(InsertAnywhereError, match=message):
        load_mesh(path)


def test_missing_and_degenerate_meshes_raise(tmp_path):
    with pytest.raises(InsertAnywhereError, match="does not exist"):
        load_mesh(tmp_path / "nope.glb")
    line = trimesh.Trimesh([[0, 0, 0], [0, 1, 0], [0, 2, 0]], [[0, 1, 2]], process=False)
    with pytest.raises(InsertAnywhereError, match="zero-area"):
        object_from_trimesh(line)


def disc_image(size=96):
    """A white-ish disc on a stalk (a lollipop), 0/255 mask and RGB image with a left/right colour split."""
    yy, xx = np.mgrid[0:size, 0:size]
    mask = ((xx - 48) ** 2 + (yy - 35) ** 2 <= 25 ** 2) | ((abs(xx - 48) <= 4) & (yy >= 35) & (yy <= 90))
    image = np.zeros((size, size, 3), np.uint8)
    image[:, :48] = (250, 20, 20)
    image[:, 48:] = (20, 20, 250)
    return image, (mask * 255).astype(np.uint8)


def test_image_relief_is_canonical_and_rounded():
    image, mask = disc_image()
    obj = object_from_image(image, mask)
    assert_canonical(obj)
    v = obj.vertices
    # Front bulges towards +Z, the back mirrors it; the disc (wide) is deeper than the stalk (thin).
    assert v[:, 2].max() > 0.1 and v[:, 2].min() == pytest.approx(-v[:, 2].max())
    head = v[v[:, 1] > 0.6]
    stalk = v[(v[:, 1] < 0.3) & (v[:, 1] > 0.05)]
    assert head[:, 2].max() > 3 * stalk[:, 2].max()
    # The base is the stalk's foot and the image's right is canonical +X (it faces the camera).
    right = obj.colors[v[:, 0] > 0.1].astype(int)
    assert (right[:, 2] > 200).mean() > 0.9
    # Height 1 corresponds to the mask's 56 + 25 + 1 rows: width of the disc = 51 / 81.
    width = v[:, 0].max() - v[:, 0].min()
    assert width == pytest.approx(51 / 81, abs=0.03)


def test_image_relief_follows_given_depth():
    image, mask = disc_image()
    yy, xx = np.mgrid[0:96, 0:96]
    depth = 2.0 + 0.01 * xx  # the left side is nearer
    obj = object_from_image(image, mask, depth=depth)
    front = obj.vertices[obj.vertices[:, 2] > 0]
    left, right = front[front[:, 0] < -0.1], front[front[:, 0] > 0.1]
    assert left[:, 2].mean() > right[:, 2].mean() + 0.05
    same = object_from_image(image, mask, disparity=1.0 / depth)
    np.testing.assert_allclose(np.sort(same.vertices[:, 2])[-50:], np.sort(obj.vertices[:, 2])[-50:], atol=0.05)


def test_bad_image_inputs_raise():
    image, mask = disc_image()
    with pytest.raises(InsertAnywhereError, match="covers 0 pixels"):
        object_from_image(image, np.zeros_like(mask))
    with pytest.raises(InsertAnywhereError, match="same size"):
        object_from_image(image, mask[:50])
    with pytest.raises(InsertAnywhereError, match="not both"):
        object_from_image(image, mask, depth=np.ones((96, 96)), disparity=np.ones((96, 96)))
    depth = np.ones((96, 96))
    depth[40, 48] = np.nan
    with pytest.raises(InsertAnywhereError, match="NaN"):
        object_from_image(image, mask, depth=depth)
