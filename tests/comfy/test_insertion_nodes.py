"""Tier (b): the generative insertion nodes in-process, with tiny models in a temporary models folder,
including the native route into core WanVaceToVideo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for tiny_models

FOLDERS = ("diffusers", "loras", "sam2", "diffusion_models", "vae", "text_encoders")


@pytest.fixture(scope="module")
def tiny(comfy, tmp_path_factory):
    import folder_paths
    from tiny_models import install_tiny_models

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ia_models")
    names = install_tiny_models(root)
    for folder in FOLDERS:
        folder_paths.add_model_folder_path(folder, str(root / folder), is_default=True)
    yield names
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def clip():
    """A 9-frame 48x32 scene (IMAGE), a moving box mask (MASK) and the anchor video with a red object in it."""
    yy, xx = np.mgrid[:32, :57]
    base = np.stack([80 + 100 * xx / 57, 120 + 60 * yy / 32, 90 + 0 * xx], axis=-1)
    base += np.random.default_rng(0).normal(0, 4, base.shape)
    frames = torch.from_numpy(np.stack([base[:, i:i + 48] for i in range(9)]).clip(0, 255).astype(np.uint8)) / 255
    masks = torch.zeros(9, 32, 48)
    for i in range(9):
        masks[i, 10:22, 12 + i:28 + i] = 1
    anchor = frames.clone()
    anchor[masks > 0.5] = torch.tensor([204.0, 38.0, 26.0]) / 255
    return frames, masks, anchor


def test_schemas_list_the_tiny_models(tiny, node_classes):
    loader = node_classes["IA_WanVACELoader"].GET_SCHEMA()
    options = {i.id: getattr(i, "options", None) for i in loader.inputs}
    assert tiny["wan_folder"] in options["diffusers_folder"]
    assert tiny["transformer"] in options["transformer"]
    sam2 = {i.id: getattr(i, "options", None) for i in node_classes["IA_SAM2Loader"].GET_SCHEMA().inputs}
    assert tiny["sam2"] in sam2["checkpoint"] and "sam2.1/sam2.1_hiera_l.yaml" in sam2["config"]


def test_sam2_and_first_frame_nodes(tiny, clip, run_node):
    frames, masks, anchor = clip
    (sam2,) = run_node("IA_SAM2Loader", checkpoint=tiny["sam2"], config="auto", working_resolution=0, device="cpu",
                       precision="float32").result
    refined, report = run_node("IA_SAM2Refine", sam2=sam2, frames=anchor, masks=masks, keyframe_interval=4,
                               min_iou=0.6, min_area_ratio=0.6, max_area_ratio=1.6, band=4,
                               occluder_prompts="").result
    assert tuple(refined.shape) == (9, 32, 48)
    assert json.loads(report)["frames"] == 9
    (poisson,) = run_node("IA_FirstFrameInpaint", frames=frames, masks=refined, method="auto", prompt="", seed=0,
                          steps=2, guidance=2.5, resolution="input", colour_strength=0.3, harmonize=0.15,
                          render=anchor).result
    assert tuple(poisson.shape) == (1, 32, 48, 3)
    outside = refined[0] < 0.5
    assert torch.equal(poisson[0][outside], frames[0][outside])
    (kontext,) = run_node("IA_FluxKontextInpaintLoader", folder=tiny["flux_folder"], precision="float32",
                          offload="none").result
    (inpainted,) = run_node("IA_FirstFrameInpaint", frames=frames, masks=refined, method="auto", prompt="a mug",
                            seed=0, steps=2, guidance=2.5, resolution="input", colour_strength=0.3, harmonize=0.15,
                            reference=anchor[:1], inpainter=kontext).result
    assert tuple(inpainted.shape) == (1, 32, 48, 3) and not torch.equal(inpainted, poisson)


def test_diffusers_route_with_stacked_loras_and_composite(tiny, clip, run_node):
    frames, masks, anchor = clip
    first = anchor[:1]
    folder = "from diffusers folder"
    (folder_model,) = run_node("IA_WanVACELoader", diffusers_folder=tiny["wan_folder"], transformer=folder, vae=folder,
                               text_encoder=folder, precision="float32", offload="none", fp8_layerwise=False,
                               vae_tiling=False).result
    (single,) = run_node("IA_WanVACELoader", diffusers_folder="none", transformer=tiny["transformer"], vae=tiny["vae"],
                         text_encoder=tiny["text_encoder"], precision="float32", offload="group", fp8_layerwise=False,
                         vae_tiling=True).result
    model = folder_model
    for key_format in ("diffusers", "comfy", "musubi"):
        (model,) = run_node("IA_WanVACELoRA", model=model, lora=tiny[f"lora_{key_format}"], strength=0.3).result
    assert len(model.loras) == 3 and folder_model.loras == ()
    settings = dict(frames=frames, masks=masks, first_frame=first, mask_fill="gray", mask_grow=2, max_side=0,
                    prompt="a red mug", negative_prompt="", seed=0, steps=2, cfg=2.0, shift=3.0, scheduler="unipc",
                    conditioning_scale=1.0, window=81, overlap=9, colour_lock=True)
    (base,) = run_node("IA_VACEInsert", model=folder_model, **settings).result
    (from_files,) = run_node("IA_VACEInsert", model=single, **settings).result
    (with_loras,) = run_node("IA_VACEInsert", model=model, reference=anchor[:1], **settings).result
    assert tuple(base.shape) == (9, 32, 48, 3)
    assert torch.allclose(base, from_files, atol=1 / 255)  # same weights; group offload does not change results
    assert (with_loras - base).abs().mean() > 1e-3
    (final,) = run_node("IA_CompositeBack", original=frames, generated=with_loras, masks=masks, dilate=2, feather=2,
                        colour_match=True, ring=6).result
    from insertanywhere.insertion.composite import blend_alpha

    for i in range(9):
        far = torch.from_numpy(blend_alpha(masks[i].numpy() > 0.5, 2, 2) == 0)
        assert torch.equal(final[i][far], frames[i][far])


def test_native_route_feeds_core_wan_vace_to_video(tiny, clip, run_node):
    frames, masks, anchor = clip
    video, control_masks, reference, width, height, length = run_node(
        "IA_VACENativeInputs", frames=frames[:6], masks=masks[:6], first_frame=anchor[:1], mask_fill="gray",
        mask_grow=0, max_side=0, reference=anchor[:1]).result
    assert (width, height, length) == (48, 32, 9)
    assert tuple(video.shape) == (9, 32, 48, 3) and tuple(control_masks.shape) == (9, 32, 48)
    assert control_masks[0].sum() == 0 and torch.equal(video[0], anchor[0])
    assert tuple(reference.shape) == (1, 32, 48, 3)

    from comfy.sd import VAE
    from comfy_extras.nodes_wan import WanVaceToVideo

    vae = VAE(sd=_comfy_format_vae())
    positive = [[torch.zeros(1, 4, 4096), {}]]
    out = WanVaceToVideo.execute(positive, positive, vae, width, height, length, 1, 1.0, control_video=video,
                                 control_masks=control_masks, reference_image=reference)
    pos, _, latent, trim = out.result
    assert trim == 1  # the reference image's latent frame, removed again by TrimVideoLatent
    assert tuple(latent["samples"].shape) == (1, 16, 3 + 1, 4, 6)
    assert pos[0][1]["vace_frames"][0].shape[2] == 4


def _comfy_format_vae():
    from tiny_models import full_width_wan_vae_state_dict

    return full_width_wan_vae_state_dict(dtype=torch.float32)


def test_native_sampling_chain_with_core_nodes(tiny, clip, run_node, comfy):
    """UNETLoader / LoraLoaderModelOnly / KSampler / TrimVideoLatent / VAEDecode on the tiny Wan VACE files,
    conditioned by VACE Native Inputs, then Composite Back: the whole native route in-process."""
    from comfy.sd import VAE
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3
    from comfy_extras.nodes_wan import TrimVideoLatent, WanVaceToVideo

    import folder_paths

    from insertanywhere.insertion.text_encoder import load_text_encoder_file

    frames, masks, anchor = clip
    video, control_masks, reference, width, height, length = run_node(
        "IA_VACENativeInputs", frames=frames, masks=masks, first_frame=anchor[:1], mask_fill="gray", mask_grow=2,
        max_side=0, reference=anchor[:1]).result
    (model,) = comfy.UNETLoader().load_unet(tiny["transformer"], "default")
    from comfy import lora as comfy_lora
    from comfy import utils as comfy_utils
    from tiny_models import LORA_TARGETS

    lora_sd = comfy_utils.load_torch_file(folder_paths.get_full_path("loras", tiny["lora"]))
    patches = comfy_lora.load_lora(lora_sd, comfy_lora.model_lora_keys_unet(model.model, {}))
    assert len(patches) == len(LORA_TARGETS) * 3  # every layer of 2 blocks + 1 VACE block is matched by ComfyUI
    (lora_model,) = comfy.LoraLoaderModelOnly().load_lora_model_only(model, tiny["lora"], 1.0)
    (lora_model,) = ModelSamplingSD3().patch(lora_model, 3.0)
    prompts = load_text_encoder_file(folder_paths.get_full_path("text_encoders", tiny["text_encoder"]), torch.float32)
    embeds = prompts.encode(["a red mug", ""])
    positive, negative = [[embeds[:1], {}]], [[embeds[1:], {}]]
    vae = VAE(sd=_comfy_format_vae())
    pos, neg, latent, trim = WanVaceToVideo.execute(positive, negative, vae, width, height, length, 1, 1.0,
                                                    control_video=video, control_masks=control_masks,
                                                    reference_image=reference).result
    (sampled,) = comfy.KSampler().sample(lora_model, 0, 2, 2.0, "uni_pc", "simple", pos, neg, latent)
    (trimmed,) = TrimVideoLatent.execute(sampled, trim).result
    (images,) = comfy.VAEDecode().decode(vae, trimmed)
    assert tuple(images.shape) == (9, 32, 48, 3) and torch.isfinite(images).all()
    (final,) = run_node("IA_CompositeBack", original=frames, generated=images, masks=masks, dilate=2, feather=2,
                        colour_match=True, ring=6).result
    assert tuple(final.shape) == tuple(frames.shape)
