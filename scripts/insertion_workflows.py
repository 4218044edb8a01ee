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
from masks_workflows import COMMON_TITLES, masks_workflow  # noqa: E402
from template_layout import BLUE, BROWN, CYAN, GREEN, GREY, PURPLE, YELLOW, Layout, Stage  # noqa: E402

from insertanywhere.model_catalog import source  # noqa: E402

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


def _start(route: str) -> str:
    return f"""## Insert an object into a video ({route}): start here

1. **Download the models** listed in the note under *6 Generate* (ComfyUI lists the missing files when it
   opens this workflow), and train or bypass the insertion LoRA (its own note).
2. **Load**: your video, the object's mesh and a picture of the object (for VACE's reference).
3. **Reconstruct**: press **Run** once (Ctrl+Enter); then the placement editor has the scene.
4. **Place**: drag the object in *Place Object*'s editor; wheel to scale, sliders to turn it.
5. **Masks**: the object follows its surface, things in front hide it, SAM2 sharpens the edges.
6. **First frame**: the object is blended into frame 0 (Poisson; connect a Flux Kontext loader for more).
7. **Generate**: Wan2.1 VACE makes the video with the object, lit and shadowed by the scene.
8. **Composite and save**: only the object's region is pasted back; the video goes to
   `output/insertanywhere/`.

The generative stages want a GPU; on a CPU they are very slow."""


def _link(folder: str, name: str) -> str:
    return f"- `models/{folder}/` [{name}]({source(folder, name).url})"


def _models_note(files: list[tuple[str, str]]) -> str:
    lines = ["## Models to download", "", "Put each file into its `ComfyUI/models/` folder, then press R:", ""]
    lines += [_link(folder, name) for folder, name in files]
    return "\n".join(lines)


DIFFUSERS_FOLDER_NOTE = (f"- `models/diffusers/{WAN_FOLDER}/`: the whole repository "
                         f"[Wan-AI/{WAN_FOLDER}](https://huggingface.co/Wan-AI/{WAN_FOLDER}) as one folder "
                         f"(`huggingface-cli download Wan-AI/{WAN_FOLDER} --local-dir models/diffusers/{WAN_FOLDER}`)")
LORA_NOTE = f"""## Insertion LoRA: train it, or leave it out

No insertion LoRA is published: `{LORA}` is one you train. Without it VACE still inserts the object,
with weaker shadows and lighting.

**Leave it out**: select the LoRA node and press **Ctrl+B** (bypass): the model passes through unchanged.
(Strength 0 does not help: the node still needs a LoRA file to load.)

**Train it** (GPU recommended; see the README, *Training the insertion LoRA*):

```
insertanywhere build-triplets --data ROSE/ --out dataset/
insertanywhere train --dataset dataset/ --out run/ --model models/diffusers/{WAN_FOLDER}
insertanywhere export-lora --checkpoint run/checkpoints/step-002000 --out ComfyUI/models/loras/
```

then pick the exported `*_comfyui.safetensors` in the LoRA node."""


def diffusers_layout() -> Layout:
    models = _models_note([("sam2", SAM2)]) + "\n" + DIFFUSERS_FOLDER_NOTE
    return Layout(
        stages=[*_geometry_stages(),
                Stage("6 Generate (Wan VACE)", YELLOW, [["models", "lora_note"], ["wan", "lora"], ["vace"]]),
                Stage("7 Composite and save", BROWN, [["composite", "video", "save"]])],
        notes={"start": ("Start here", _start("diffusers route")), "models": ("Models", models),
               "lora_note": ("Insertion LoRA", LORA_NOTE)},
        titles={**INSERTION_TITLES, "wan": "Wan VACE Loader (diffusers folder)", "lora": "Insertion LoRA",
                "vace": "VACE Insert (generate the video)"})


def native_layout() -> Layout:
    files = [("sam2", SAM2), ("diffusion_models", WAN_FILES["unet"]), ("text_encoders", WAN_FILES["clip"]),
             ("vae", WAN_FILES["vae"])]
    return Layout(
        stages=[*_geometry_stages(),
                Stage("6 Generate (Wan VACE, core nodes)", YELLOW,
                      [["models", "lora_note"], ["unet", "lora", "shift", "clip", "vae"],
                       ["positive", "negative", "inputs"], ["to_video", "sampler", "trim", "decode"]]),
                Stage("7 Composite and save", BROWN, [["composite", "video", "save"]])],
        notes={"start": ("Start here", _start("core Wan nodes")), "models": ("Models", _models_note(files)),
               "lora_note": ("Insertion LoRA", LORA_NOTE)},
        titles={**INSERTION_TITLES, "inputs": "VACE inputs for WanVaceToVideo", "unet": "Wan VACE model",
                "lora": "Insertion LoRA", "shift": "Sampling shift", "clip": "Text encoder (umt5)",
                "positive": "Prompt: what the object is", "negative": "Negative prompt", "vae": "Wan VAE",
                "to_video": "Wan VACE to video", "sampler": "Sampler", "trim": "Trim the reference frames",
                "decode": "Decode frames"})


def _geometry_stages() -> list[Stage]:
    return [Stage("1 Load", BLUE, [["start"], ["load", "object"], ["reference"]]),
            Stage("2 Reconstruct", CYAN, [["recon"]]),
            Stage("3 Place", GREEN, [["place"]]),
            Stage("4 Masks", PURPLE, [["propagate", "reproject"], ["sam2", "refine"]]),
            Stage("5 First frame", GREY, [["inpaint"]])]


INSERTION_TITLES = {**COMMON_TITLES, "reference": "Picture of the object (reference)", "sam2": "SAM2 Loader",
                    "refine": "SAM2 Refine Masks", "inpaint": "Inpaint First Frame", "composite": "Composite Back",
                    "video": "Inserted video", "save": "Save inserted video"}
WORKFLOWS = {"insertanywhere_insert_diffusers": diffusers_workflow,
             "insertanywhere_insert_native": native_workflow}
LAYOUTS = {"insertanywhere_insert_diffusers": diffusers_layout,
           "insertanywhere_insert_native": native_layout}

