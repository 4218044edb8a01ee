"""Tier (b): the mask-generation nodes chained in-process on a tiny synthetic scene with ground truth."""

import json

import numpy as np
import pytest
import torch

from insertanywhere.bench import score


@pytest.fixture(scope="module")
def sample(comfy):
    import folder_paths

    from insertanywhere.sample_scene import make_scene

    # small, but large enough that optical flow and the z-test edges are not the whole story
    scene = make_scene(kind="occluder", num_frames=17, width=320, height=192, seed=1)
    bundle = scene.write_bundle(f"{folder_paths.get_input_directory()}/tiny_bundle")
    return scene, bundle


def test_mask_chain_matches_ground_truth(sample, run_node):
    scene, bundle = sample
    frames, fps, _ = run_node("IA_LoadVideo", file="tiny_bundle/scene.mp4", start_frame=0, frame_cap=17, stride=1,
                              max_side=0, fit="none", frame_count="any").result
    assert tuple(frames.shape) == (17, 192, 320, 3)
    K = json.dumps(np.asarray(scene.K).tolist())
    rec, moving, depth_preview = run_node("IA_Reconstruct4D", frames=frames, fps=fps,
                                          depth_file="tiny_bundle/depth.npz", fov_deg=0.0, intrinsics=K,
                                          disk_cache=True).result
    assert tuple(moving.shape) == (17, 192, 320) and depth_preview.shape[0] == 17
    again = run_node("IA_Reconstruct4D", frames=frames, fps=fps, depth_file="tiny_bundle/depth.npz", fov_deg=0.0,
                     intrinsics=K, disk_cache=True).result[0]
    assert np.array_equal(again.camera_from_world, rec.camera_from_world)  # second run read the disk cache

    (obj,) = run_node("IA_ObjectFromMesh", mesh_file="tiny_bundle/object.ply").result
    placed, preview = run_node("IA_PlaceObject", scene=rec, object=obj,
                               placement=json.dumps(scene.placement)).result
    assert tuple(preview.shape) == (1, 192, 320, 3)
    (track,) = run_node("IA_Propagate", scene=rec, placement=placed, propagation=True).result
    visible, amodal, anchor = run_node("IA_Reproject", scene=rec, object=obj, track=track, occlusion=True,
                                       splat_px=0).result
    assert tuple(anchor.shape) == (17, 192, 320, 3)
    assert (visible <= amodal).all()
    # the nodes are the core pipeline: same inputs, same masks as the CLI path
    from insertanywhere.bench import frame_ious
    from insertanywhere.masks.pipeline import run_masks

    cli = run_masks(video=bundle / "scene.mp4", placement=scene.placement, object_mesh=bundle / "object.ply",
                    depth=bundle / "depth.npz", intrinsics=np.asarray(scene.K))
    assert frame_ious(visible.numpy() > 0.5, cli.visible).min() >= 0.99
    # with true depth and K the first frames, before the walker covers the view, are exact
    early = score(visible.numpy()[:5] > 0.5, scene.gt_visible[:5], scene.gt_amodal[:5])
    assert early["min"] >= 0.95, early


def test_object_from_image_gives_unit_height_cloud(sample, run_node):
    scene, _ = sample
    image = torch.from_numpy(scene.object_ref).float()[None] / 255
    mask = torch.from_numpy(scene.object_ref_mask > 127).float()[None]
    (obj,) = run_node("IA_ObjectFromImage", image=image, mask=mask, invert_mask=False).result
    height = obj.vertices[:, 1].max() - obj.vertices[:, 1].min()
    assert obj.vertices[:, 1].min() == pytest.approx(0, abs=1e-3) and height == pytest.approx(1, abs=1e-2)
    (inverted,) = run_node("IA_ObjectFromImage", image=image, mask=1 - mask, invert_mask=True).result
    assert len(inverted.vertices) == len(obj.vertices)
