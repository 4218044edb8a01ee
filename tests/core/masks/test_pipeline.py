"""run_masks end to end on sample-scene bundles: outputs on disk, accuracy, ablation, bad inputs."""

import json
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pytest
from PIL import Image

import insertanywhere.masks.reconstruct as reconstruct_module
from insertanywhere.bench import score
from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks.pipeline import load_depth, load_intrinsics, load_object, masks_from_scene, run_masks
from insertanywhere.masks.object3d import object_from_trimesh
from insertanywhere.masks.options import CAMERA_ONLY
from insertanywhere.memory import Selection
from insertanywhere.masks.placement import parse_placement
from insertanywhere.sample_scene import make_scene
from insertanywhere.video import read_video

FRAMES, WIDTH, HEIGHT = 13, 160, 96


@lru_cache(maxsize=None)
def sample(kind, seed=0):
    s = make_scene(kind, num_frames=FRAMES, width=WIDTH, height=HEIGHT, seed=seed)
    return s, s.to_scene_record()


@pytest.fixture
def bundle(tmp_path_factory):
    def make(kind, seed=0):
        s, _ = sample(kind, seed)
        return s, s.write_bundle(tmp_path_factory.mktemp(f"{kind}{seed}"))
    return make


@pytest.fixture
def exact_reconstruction(monkeypatch):
    """Replace the reconstruction by the scene's exact record (the stages after it are under test)
    and record what it was given."""
    calls = []

    def install(kind, seed=0):
        s, record = sample(kind, seed)

        def fake(frames, *, K=None, fps=16.0, progress=None, depth=None, disparity=None, **_):
            calls.append({"frames": frames, "K": K, "depth": depth, "disparity": disparity, "fps": fps})
            n = len(frames)
            return replace(record, frames=frames, depth=record.depth[:n],
                           camera_from_world=record.camera_from_world[:n], moving=record.moving[:n],
                           flow_fwd=record.flow_fwd[:n - 1], flow_bwd=record.flow_bwd[:n - 1],
                           flow_valid=record.flow_valid[:n - 1])

        monkeypatch.setattr(reconstruct_module, "reconstruct", fake)
        return calls
    return install


def test_run_masks_writes_every_output(tmp_path, bundle, exact_reconstruction):
    s, folder = bundle("occluder")
    calls = exact_reconstruction("occluder")
    out = tmp_path / "out"
    result = run_masks(folder / "scene.mp4", s.placement, out,
                       object_mesh=folder / "object.ply", depth=folder / "depth.npz", intrinsics=s.K)
    # the inputs reached the reconstruction
    assert calls[0]["frames"].shape == (FRAMES, HEIGHT, WIDTH, 3)
    np.testing.assert_allclose(calls[0]["depth"], s.depth.astype(np.float16), rtol=1e-3)
    np.testing.assert_allclose(calls[0]["K"], s.K)
    for name in ("visible", "amodal"):
        files = sorted((out / name).glob("*.png"))
        assert [f.name for f in files] == [f"{t:05d}.png" for t in range(FRAMES)]
        first = np.asarray(Image.open(files[0]))
        assert first.shape == (HEIGHT, WIDTH) and set(np.unique(first)) <= {0, 255}
    written = np.stack([np.asarray(Image.open(out / "visible" / f"{t:05d}.png")) > 127 for t in range(FRAMES)])
    assert (written == result.visible).all()
    anchor, _ = read_video(out / "anchor.mp4")
    assert anchor.shape == (FRAMES, HEIGHT, WIDTH, 3)
    timings = json.loads((out / "timings.json").read_text())
    assert {"decode", "reconstruct", "object3d", "place", "propagate", "reproject", "write", "total"} <= set(timings)
    track = json.loads((out / "track.json").read_text())
    assert np.asarray(track["world_from_object"]).shape == (FRAMES, 4, 4)
    assert track["format_version"] == 2
    np.testing.assert_allclose(track["camera_from_world"], result.scene.camera_from_world, atol=1e-5)
    assert (out / "preview.png").is_file()
    scores = score(result.visible, s.gt_visible, s.gt_amodal)
    assert scores["mean"] > 0.97 and scores["occluded"] > 0.95, scores
    assert (result.visible <= result.amodal).all()
    assert "frames" in result.summary()


@pytest.mark.parametrize("kind", ["moving_support", "occluder"])
def test_camera_only_ablation_is_clearly_worse(kind):
    s, record = sample(kind)
    obj = object_from_trimesh(s.object_mesh)
    full = score(masks_from_scene(record, obj, parse_placement(s.placement)).visible, s.gt_visible, s.gt_amodal)
    camera_only = masks_from_scene(record, obj, parse_placement(s.placement), CAMERA_ONLY)
    ablated = score(camera_only.visible, s.gt_visible, s.gt_amodal)
    assert full["mean"] > 0.95
    key = "occluded" if kind == "occluder" else "mean"
    assert ablated[key] < full[key] - 0.3
    assert (camera_only.visible == camera_only.amodal).all()


def test_real_reconstruction_with_oracle_depth(tmp_path, bundle):
    s, folder = bundle("static", 1)
    result = run_masks(folder / "scene.mp4", s.placement, None, object_mesh=folder / "object.ply",
                       depth=folder / "depth.npz", intrinsics=s.K)
    assert score(result.visible, s.gt_visible, s.gt_amodal)["mean"] > 0.9
    assert not any(result.track.moving)


def test_object_from_image_files(tmp_path, bundle, exact_reconstruction):
    s, folder = bundle("static")
    exact_reconstruction("static")
    result = run_masks(folder / "scene.mp4", s.placement, None, object_image=folder / "object_ref.png",
                       object_mask=folder / "object_ref_mask.png", selection=Selection(frame_cap=5, fit="none"))
    assert len(result.visible) == 5
    # a rounded relief from one front view is not the true shape, but it stands where the object stands
    assert score(result.visible, s.gt_visible[:5], s.gt_amodal[:5])["mean"] > 0.55
    for t in range(5):
        pred = np.argwhere(result.visible[t]).mean(0)
        truth = np.argwhere(s.gt_visible[t]).mean(0)
        assert np.linalg.norm(pred - truth) < 3.0
    rgba = np.dstack([s.object_ref, s.object_ref_mask])
    Image.fromarray(rgba).save(tmp_path / "cutout.png")
    assert load_object(object_image=tmp_path / "cutout.png").vertices.shape[1] == 3


def test_bad_inputs_raise(tmp_path, bundle):
    s, folder = bundle("static")
    with pytest.raises(InsertAnywhereError, match="Placement file"):
        run_masks(folder / "scene.mp4", tmp_path / "missing.json", None, object_mesh=folder / "object.ply")
    bad = tmp_path / "bad.json"
    bad.write_text('{"anchor": [1, 2], "height_px": 3, "size": 4}')
    with pytest.raises(InsertAnywhereError, match="Unknown placement key"):
        run_masks(folder / "scene.mp4", bad, None, object_mesh=folder / "object.ply")
    np.savez(tmp_path / "d.npz", z=np.ones((2, 3, 4)))
    with pytest.raises(InsertAnywhereError, match="exactly one of 'depth'"):
        load_depth(tmp_path / "d.npz")
    with pytest.raises(InsertAnywhereError, match=r"\[frames, H, W\]"):
        load_depth({"depth": np.ones((3, 4))})
    ramp = np.broadcast_to(np.linspace(1, 3, HEIGHT)[:, None], (3, HEIGHT, WIDTH))  # a floor-like depth
    np.savez(tmp_path / "short.npz", depth=ramp)
    with pytest.raises(InsertAnywhereError, match="3 frames but the video has"):
        run_masks(folder / "scene.mp4", s.placement, None, object_mesh=folder / "object.ply",
                  depth=tmp_path / "short.npz")
    (tmp_path / "k.json").write_text('{"intrinsics": 1}')
    with pytest.raises(InsertAnywhereError, match="under key"):
        load_intrinsics(tmp_path / "k.json")
    with pytest.raises(InsertAnywhereError, match="positive fx"):
        load_intrinsics([[0, 0, 1], [0, 1, 1], [0, 0, 1]])
    with pytest.raises(InsertAnywhereError, match="exactly one object"):
        load_object(object_mesh=folder / "object.ply", object_image=folder / "object_ref.png")
    with pytest.raises(InsertAnywhereError, match="no alpha"):
        load_object(object_image=folder / "object_ref.png")


def test_mono_depth_on_a_striped_static_table_keeps_the_object_put(tmp_path):
    # An orbit around a table with a striped top, mono depth, decoded from the mp4: the
    # reconstructed cameras drift by a pixel or two, and along the stripes a wandering "following"
    # pose looks as good as the drifted static one. Once this made the object slide off with
    # the stripes (mean IoU 0.76; the static pose alone gives 0.92).
    scene = make_scene("static", num_frames=33, width=416, height=240, seed=2)
    folder = scene.write_bundle(tmp_path / "striped")
    result = run_masks(folder / "scene.mp4", scene.placement, object_mesh=folder / "object.ply",
                       depth=folder / "depth_mono.npz")
    assert not any(result.track.moving)
    assert score(result.visible, scene.gt_visible, scene.gt_amodal)["mean"] > 0.88
