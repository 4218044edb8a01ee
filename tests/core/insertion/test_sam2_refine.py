"""SAM2 refine: loading without global Hydra, config inference, fusion rules, occluders, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.insertion import sam2_refine
from insertanywhere.insertion.sam2_refine import fuse, keyframes, load_sam2, parse_occluder_prompts, refine_masks

from insertion_helpers import box_masks, scene_video


def _iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def _dilate(mask, r):
    import cv2

    return cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2)) > 0


# --------------------------------------------------------------------------------------------- loading


def test_packaged_configs_build_and_are_recognised_from_their_weights():
    """The real SAM2.1 / SAM2 tiny architectures, built from the sam2 package's YAML without Hydra's compose."""
    from omegaconf import OmegaConf

    root = sam2_refine._package_config_dir()
    for name in ("sam2.1/sam2.1_hiera_t.yaml", "sam2/sam2_hiera_t.yaml"):
        model = sam2_refine.build_sam2_model(OmegaConf.load(root / name))
        assert type(model).__name__ == "SAM2VideoPredictor" and model.image_size == 1024
        assert sam2_refine.infer_config_name(model.state_dict(), "whatever.pt") == name


@pytest.mark.parametrize("embed, blocks, size", [(96, 16, "s"), (112, 24, "b+"), (144, 48, "l")])
def test_config_inferred_for_every_size(embed, blocks, size):
    sd = {"image_encoder.trunk.patch_embed.proj.weight": torch.empty(embed, 3, 7, 7), "no_obj_embed_spatial": 0}
    sd.update({f"image_encoder.trunk.blocks.{i}.norm1.weight": 0 for i in range(blocks)})
    assert sam2_refine.infer_config_name(sd) == f"sam2.1/sam2.1_hiera_{size}.yaml"


def test_loading_works_while_another_pack_owns_global_hydra(tmp_path, sam2_checkpoint):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import MissingConfigException

    import sam2.build_sam

    (tmp_path / "other_pack.yaml").write_text("foo: 1\n")
    previous = GlobalHydra.instance().hydra if GlobalHydra.instance().is_initialized() else None
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(tmp_path), version_base="1.2"):
            # sam2's own builder composes from global Hydra: it breaks
            with pytest.raises(MissingConfigException):
                sam2.build_sam.build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu")
            model = load_sam2(sam2_checkpoint)  # ours does not depend on it
            assert model.image_size == 128
    finally:
        GlobalHydra.instance().clear()
        if previous is not None:
            GlobalHydra.instance().initialize(previous)


def test_safetensors_checkpoint_and_working_resolution(tmp_path, sam2_checkpoint):
    from tiny_models import write_sam2

    path = write_sam2(tmp_path, name="tiny_sam2.1_fp", safetensors=True)
    model = load_sam2(path, image_size=64)
    assert model.image_size == 64
    a = load_sam2(sam2_checkpoint).predictor.state_dict()
    b = model.predictor.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    result = refine_masks(model, scene_video(3), box_masks(3))
    assert result.masks.shape == (3, 32, 48)


def test_load_errors_name_the_file(tmp_path, sam2_checkpoint, models_dir):
    from safetensors.torch import save_file

    with pytest.raises(InsertAnywhereError, match="sam2_large.pt' does not exist"):
        load_sam2(tmp_path / "sam2_large.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(sam2_checkpoint.read_bytes()[:2000])
    with pytest.raises(InsertAnywhereError, match="cut.pt.*corrupt"):
        load_sam2(cut)
    other = tmp_path / "vae.safetensors"
    save_file({"decoder.middle.0.residual.0.gamma": torch.zeros(2)}, str(other))
    with pytest.raises(InsertAnywhereError, match="'vae.safetensors' is not a SAM2 checkpoint.*Wan VAE"):
        load_sam2(other)
    with pytest.raises(InsertAnywhereError, match="does not fit config.*sam2.1_hiera_t"):
        load_sam2(sam2_checkpoint, config="sam2.1/sam2.1_hiera_t.yaml")
    with pytest.raises(InsertAnywhereError, match="multiple of 32"):
        load_sam2(sam2_checkpoint, image_size=100)


# --------------------------------------------------------------------------------------------- fusion


def test_keyframes_are_regular_and_include_first_and_last_visible():
    masks = np.zeros((20, 4, 4), bool)
    masks[3:18, 1, 1] = True
    assert keyframes(masks, 5) == [3, 5, 10, 15, 17]
    assert keyframes(np.zeros((5, 4, 4), bool), 5) == []


def test_fuse_keeps_agreeing_sam2_and_falls_back_on_collapse_and_drift():
    proj = np.zeros((4, 40, 40), bool)
    proj[:, 10:30, 10:30] = True
    sam = np.zeros_like(proj)
    sam[0, 11:31, 9:29] = True          # agrees, slightly shifted edges
    sam[0, 0:3, 0:3] = True             # plus a far-away blob
    sam[1, 18:21, 18:21] = True         # collapsed
    sam[2, 5:25, 25:40] = True          # drifted
    proj[3] = False                     # object hidden here
    sam[3, 10:20, 10:20] = True
    fused, info = fuse(proj, sam, band=2)
    assert [f["source"] for f in info] == ["sam2", "projection", "projection", "empty"]
    assert not fused[0, 0:3, 0:3].any()  # outside the band around the projection
    assert np.array_equal(fused[0], sam[0] & _dilate(proj[0], 2))
    assert np.array_equal(fused[1], proj[1]) and np.array_equal(fused[2], proj[2])
    assert not fused[3].any()


def test_refine_end_to_end_with_moving_occluders(sam2_model):
    frames, proj = scene_video(), box_masks()
    moving = np.zeros_like(proj)
    moving[:, 10:22, 20:24] = True       # a pole in front of the object
    steps = []
    result = refine_masks(sam2_model, frames, proj, keyframe_interval=4, band=3, moving=moving,
                          progress=lambda d, t: steps.append((d, t)))
    assert result.masks.shape == proj.shape
    assert steps[-1] == (9, 9)
    for i, info in enumerate(result.frames):
        assert not (result.masks[i] & ~_dilate(proj[i], 3)).any()  # never beyond the band
        if info["source"] == "projection":  # the projection, minus whatever occluder was tracked there
            assert not (result.masks[i] & ~proj[i]).any()
    for k in (0, 4, 8):  # keyframes: both tracks equal their mask prompts
        assert result.frames[k]["source"] == "sam2" and result.frames[k]["iou"] > 0.8
        assert (result.masks[k] & moving[k]).sum() <= 0.1 * moving[k].sum()  # the occluder is cut out
        assert _iou(result.masks[k], proj[k] & ~moving[k]) > 0.75
    summary = result.summary()
    assert summary["frames"] == 9 and summary["sam2"] + summary["projection"] == 9


def test_user_point_and_box_occluders_run(sam2_model):
    frames, proj = scene_video(5), box_masks(5)
    prompts = '[{"frame": 0, "points": [[20, 15]], "labels": [1]}, {"frame": 2, "box": [18, 8, 26, 24], "id": 1}]'
    result = refine_masks(sam2_model, frames, proj, occluder_prompts=prompts)
    assert result.masks.shape == proj.shape and result.masks.sum() <= proj.sum() + 5 * 100


@pytest.mark.parametrize("text, message", [
    ("[{frame: 0}]", "not valid JSON"),
    ('[{"frame": 12, "box": [0, 0, 4, 4]}]', "outside 0..8"),
    ('[{"frame": 0}]', "neither 'points' nor 'box'"),
    ('[{"frame": 0, "box": [5, 5, 1, 1]}]', "x1>x0"),
    ('[{"frame": 0, "points": [[500, 1]]}]', "outside the 48x32 frame"),
    ('[{"frame": 0, "points": [[1, 1]], "labels": [3]}]', "labels"),
])
def test_occluder_prompt_errors(text, message):
    with pytest.raises(InsertAnywhereError, match=message):
        parse_occluder_prompts(text, 9, (32, 48))


def test_nothing_to_track_gives_empty_masks(sam2_model):
    result = refine_masks(sam2_model, scene_video(3), np.zeros((3, 32, 48), bool))
    assert not result.masks.any() and [f["source"] for f in result.frames] == ["empty"] * 3
