"""Specs of the full insertion workflows (diffusers route and native route); scripts/build_workflows.py
writes them with the others:

    COMFYUI_PATH=/path/to/ComfyUI python scripts/build_workflows.py

Both continue the masks workflow (video -> reconstruct -> place -> propagate -> reproject) with
SAM2 refine -> first-frame inpaint -> VACE -> composite -> SaveVideo. The model names are the
files users download (and the names the e2e harness installs tiny models under):

    models/diffusers/Wan2.1-VACE-1.3B-diffusers/            (diffusers route)
    models/diffusion_models/wan2.1_vace_1.3B_fp16.safetensors, models/vae/wan_2.1_vae.safetensors,
    models/text_encoders/umt5_xxl_fp16.safetensors          (native route)
    models/sam2/sam2.1_hiera_tiny.pt, models/loras/insertanywhere_vace_1.3b_lora.safetensors
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_workflows import masks_workflow  # noqa: E402

SAM2 = "sam2.1_hiera_tiny.pt"
LORA = "insertanywhere_vace_1.3b_lora.safetensors"
WAN_FOLDER = "Wan2.1-VACE-1.3B-diffusers"
WAN_FILES = {"unet": "wan2.1_vace_1.3B_fp16.safetensors", "vae": "wan_2.1_vae.safetensors",
             "clip": "umt5_xxl_fp16.safetensors"}
PROMPT = "a ceramic vase standing on the surface, casting a soft shadow, natural light"
NEGATIVE = "blurred details, worst quality, low quality, deformed, still picture, messy background"


def _geometry_and_first_frame() -> list:
    """Video -> 4D masks (the masks workflow's first six nodes) -> SAM2 refine -> inpainted frame 0, plus the
    object's reference picture."""
    geometry = masks_workflow()[:6]
    return geometry + [
        ("reference", "LoadImage", {"image": "insertanywhere_sample_ref.png"}),
        ("sam2", "IA_SAM2Loader", {"checkpoint": SAM2}),
        ("refine", "IA_SAM2Refine", {"sam2": ("sam2", "sam2"), "frames": ("reproject", "anchor_video"),
                                     "masks": ("reproject", "visible")}),
        ("inpaint", "IA_FirstFrameInpaint", {"frames": ("load", "frames"), "masks": ("refine", "masks"),
                                             "render": ("reproject", "anchor_video"), "method": "auto",
                                             "prompt": PROMPT}),
    ]


def _composite_and_save(generated: tuple) -> list:
    return [
        ("composite", "IA_CompositeBack", {"original": ("load", "frames"), "generated": generated,
                                           "masks": ("refine", "masks")}),
        ("video", "CreateVideo", {"images": ("composite", "frames"), "fps": ("load", "fps")}),
        ("save", "SaveVideo", {"video": ("video", "VIDEO"), "filename_prefix": "insertanywhere/inserted"}),
    ]


def diffusers_workflow() -> list:
    return _geometry_and_first_frame() + [
        ("wan", "IA_WanVACELoader", {"diffusers_folder": WAN_FOLDER}),
        ("lora", "IA_WanVACELoRA", {"model": ("wan", "model"), "lora": LORA, "strength": 1.0}),
        ("vace", "IA_VACEInsert", {"model": ("lora", "model"), "frames": ("load", "frames"),
                                   "masks": ("refine", "masks"), "first_frame": ("inpaint", "first_frame"),
                                   "reference": ("reference", "IMAGE"), "prompt": PROMPT,
                                   "negative_prompt": NEGATIVE, "steps": 30, "cfg": 5.0}),
    ] + _composite_and_save(("vace", "frames"))


def native_workflow() -> list:
    return _geometry_and_first_frame() + [
        ("inputs", "IA_VACENativeInputs", {"frames": ("load", "frames"), "masks": ("refine", "masks"),
                                           "first_frame": ("inpaint", "first_frame"),
                                           "reference": ("reference", "IMAGE")}),
        ("unet", "UNETLoader", {"unet_name": WAN_FILES["unet"]}),
        ("lora", "LoraLoaderModelOnly", {"model": ("unet", "MODEL"), "lora_name": LORA, "strength_model": 1.0}),
        ("shift", "ModelSamplingSD3", {"model": ("lora", "MODEL"), "shift": 3.0}),
        ("clip", "CLIPLoader", {"clip_name": WAN_FILES["clip"], "type": "wan"}),
        ("positive", "CLIPTextEncode", {"clip": ("clip", "CLIP"), "text": PROMPT}),
        ("negative", "CLIPTextEncode", {"clip": ("clip", "CLIP"), "text": NEGATIVE}),
        ("vae", "VAELoader", {"vae_name": WAN_FILES["vae"]}),
        ("to_video", "WanVaceToVideo", {"positive": ("positive", "CONDITIONING"),
                                        "negative": ("negative", "CONDITIONING"), "vae": ("vae", "VAE"),
                                        "width": ("inputs", "width"), "height": ("inputs", "height"),
                                        "length": ("inputs", "length"),
                                        "control_video": ("inputs", "control_video"),
                                        "control_masks": ("inputs", "control_masks"),
                                        "reference_image": ("inputs", "reference_image")}),
        ("sampler", "KSampler", {"model": ("shift", "MODEL"), "positive": ("to_video", "positive"),
                                 "negative": ("to_video", "negative"), "latent_image": ("to_video", "latent"),
                                 "steps": 30, "cfg": 5.0, "sampler_name": "uni_pc", "scheduler": "simple"}),
        ("trim", "TrimVideoLatent", {"samples": ("sampler", "LATENT"), "trim_amount": ("to_video", "trim_latent")}),
        ("decode", "VAEDecode", {"samples": ("trim", "LATENT"), "vae": ("vae", "VAE")}),
    ] + _composite_and_save(("decode", "IMAGE"))


WORKFLOWS = {"insertanywhere_insert_diffusers": diffusers_workflow,
             "insertanywhere_insert_native": native_workflow}

