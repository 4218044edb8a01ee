"""Generative insertion nodes: SAM2 refine -> first-frame inpaint -> Wan VACE (+LoRA) -> composite back.

Two routes to the video model:
  diffusers  Wan VACE Loader (+ LoRA) -> VACE Insert, everything inside this pack
  native     VACE Native Inputs -> core WanVaceToVideo / KSampler / TrimVideoLatent with the user's own files
Both end in Composite Back.
"""

from __future__ import annotations

import json

import numpy as np

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.insertion import composite as core_composite
from insertanywhere.insertion import conditioning as core_conditioning
from insertanywhere.insertion import inpaint as core_inpaint
from insertanywhere.insertion import sam2_refine, vace, wan
from insertanywhere.insertion.long_video import plan_windows
from insertanywhere.insertion.options import KONTEXT_RESOLUTIONS, KontextOptions, VACEOptions

from ._comfy import check_combos, io, progress_bar, validate_combos
from .missing_models import workflow_problem
from .models import (diffusers_folders, diffusers_path, missing_models_problem, model_options, model_path,
                     require_models)
from .tensors import frames_to_image, image_to_frames, mask_to_numpy, masks_to_tensor
from .types import CATEGORY

STAGE = f"{CATEGORY}/insertion"
SAM2Model = io.Custom("IA_SAM2")                 # sam2_refine.SAM2Model
WanVACE = io.Custom("IA_WAN_VACE")               # wan.WanVACEModel (+ stacked LoRAs)
ImageInpainter = io.Custom("IA_IMAGE_INPAINTER")  # diffusers FluxKontextInpaintPipeline
FROM_FOLDER = "from diffusers folder"
NONE = "none"
PRECISIONS = ["auto", "bfloat16", "float16", "float32"]
WAN_TIP = "The Wan VACE model from Wan VACE Loader (with any LoRAs stacked on it)."


# --------------------------------------------------------------------------------------------- helpers


def _device():
    import comfy.model_management as mm

    return mm.get_torch_device()


def _free_comfy_memory() -> None:
    """Unload ComfyUI's own models before a diffusers pipeline takes the GPU."""
    import comfy.model_management as mm

    mm.unload_all_models()
    mm.soft_empty_cache()


def _first(frames, what: str) -> np.ndarray:
    array = image_to_frames(frames)
    if len(array) == 0:
        raise InsertAnywhereError(f"{what} is empty.")
    return array[0]


def _masks(mask, num: int, size: tuple[int, int], what: str) -> np.ndarray:
    masks = mask_to_numpy(mask)
    if masks.shape[1:] != size:
        masks = core_conditioning.resize_masks(masks, size)
    if len(masks) == 1 and num > 1:
        masks = np.repeat(masks, num, axis=0)
    if len(masks) < num:
        raise InsertAnywhereError(f"{what} has {len(masks)} masks for {num} frames; connect one mask per frame.")
    return masks[:num]


# --------------------------------------------------------------------------------------------- SAM2


class SAM2Loader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_SAM2Loader",
            display_name="SAM2 Loader (InsertAnywhere)",
            category=STAGE,
            description="Load a SAM2 / SAM2.1 checkpoint (tiny, small, base+, large) from models/sam2 as a video "
                        "predictor. The config is built without global Hydra state.",
            inputs=[
                io.Combo.Input("checkpoint", options=model_options("sam2"),
                               tooltip="A .pt from Meta (sam2.1_hiera_large.pt, ...) or a .safetensors in "
                                       "models/sam2."),
                io.Combo.Input("config", options=["auto", *sam2_refine.packaged_configs()], default="auto",
                               tooltip="auto: a .yaml with the checkpoint's name beside it (it may only change "
                                       "the packaged architecture's numbers), else read off the weights (size and "
                                       "SAM2 vs SAM2.1). File paths are not accepted."),
                io.Int.Input("working_resolution", default=0, min=0, max=2048, step=32,
                             tooltip="Side SAM2 works at; 0 = the model's own (1024). 512 makes CPU use practical "
                                     "at some loss of edge detail."),
                io.Combo.Input("device", options=["auto", "cpu"], default="auto",
                               tooltip="auto = ComfyUI's device (GPU when there is one)."),
                io.Combo.Input("precision", options=["float32", "bfloat16", "float16"], default="float32",
                               tooltip="bfloat16/float16 autocast on CUDA only; CPU always runs float32."),
            ],
            outputs=[SAM2Model.Output(display_name="sam2", tooltip="The loaded SAM2 model, for SAM2 Refine.")],
            hidden=[io.Hidden.unique_id],  # validate_inputs: which node of the prompt it is
        )

    @classmethod
    def execute(cls, checkpoint, config, working_resolution, device, precision) -> io.NodeOutput:
        require_models(cls, {"checkpoint": ("sam2", checkpoint)})
        check_combos(cls, locals())
        path = model_path("sam2", checkpoint)
        model = sam2_refine.load_sam2(path, config=config, image_size=working_resolution,
                                      device="cpu" if device == "cpu" else _device(), dtype=precision)
        return io.NodeOutput(model)

    @classmethod
    def validate_inputs(cls, config):  # names only config (never **kwargs): the rest keep ComfyUI's checks
        return workflow_problem(cls.hidden.unique_id) or validate_combos(cls, config=config)


class SAM2Refine(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_SAM2Refine",
            display_name="SAM2 Refine Masks",
            category=STAGE,
            description="Seed SAM2 with the projected masks on keyframes, track between them, and keep SAM2's "
                        "cleaner edges only where it agrees with the projection (the projection wins where SAM2 "
                        "collapses or drifts). Optional occluders are tracked and cut out.",
            inputs=[
                SAM2Model.Input("sam2", tooltip="A SAM2 model from SAM2 Loader."),
                io.Image.Input("frames", tooltip="The frames the masks belong to, usually Reproject's anchor_video "
                                                 "(the object painted in)."),
                io.Mask.Input("masks", tooltip="Projected visible masks, one per frame."),
                io.Int.Input("keyframe_interval", default=8, min=1, max=1000,
                             tooltip="Every n-th frame (plus the first and last with the object) gets the projected "
                                     "mask as a prompt."),
                io.Float.Input("min_iou", default=0.6, min=0.0, max=1.0, step=0.01,
                               tooltip="SAM2's mask is used on a frame only if its IoU with the projection is at "
                                       "least this."),
                io.Float.Input("min_area_ratio", default=0.6, min=0.0, max=1.0, step=0.01,
                               tooltip="...and its area is at least this fraction of the projection's (collapse)."),
                io.Float.Input("max_area_ratio", default=1.6, min=1.0, max=10.0, step=0.01,
                               tooltip="...and at most this multiple of it (leaking into the scene)."),
                io.Int.Input("band", default=8, min=0, max=256,
                             tooltip="SAM2 may move the edge at most this many pixels beyond the projection."),
                io.String.Input("occluder_prompts", default="", multiline=True, optional=True,
                                tooltip='Occluders to cut out, JSON: [{"frame": 0, "points": [[x, y]], '
                                        '"labels": [1]}, {"frame": 5, "box": [x0, y0, x1, y1], "id": 1}]'),
                io.Mask.Input("moving_masks", optional=True,
                              tooltip="Moving-object masks (4D Reconstruct's 'moving'): tracked as occluders and "
                                      "cut out. Leave unconnected when the object rides on a moving thing."),
            ],
            outputs=[
                io.Mask.Output(display_name="masks", tooltip="Refined masks, one per frame."),
                io.String.Output(display_name="report", tooltip="JSON: per frame which source won, IoU, area ratio."),
            ],
        )

    @classmethod
    def execute(cls, sam2, frames, masks, keyframe_interval, min_iou, min_area_ratio, max_area_ratio, band,
                occluder_prompts="", moving_masks=None) -> io.NodeOutput:
        video = image_to_frames(frames)
        size = video.shape[1:3]
        projected = _masks(masks, len(video), size, "masks")
        moving = _masks(moving_masks, len(video), size, "moving_masks") if moving_masks is not None else None
        result = sam2_refine.refine_masks(
            sam2, video, projected, keyframe_interval=keyframe_interval, min_iou=min_iou,
            area_range=(min_area_ratio, max_area_ratio), band=band, moving=moving,
            occluder_prompts=occluder_prompts or "", progress=progress_bar(len(video)))
        return io.NodeOutput(masks_to_tensor(result.masks), json.dumps(result.summary()))


# --------------------------------------------------------------------------------------------- first frame


class FluxKontextLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_FluxKontextInpaintLoader",
            display_name="Flux Kontext Inpaint Loader",
            category=STAGE,
            description="Load FluxKontextInpaintPipeline from a local diffusers folder in models/diffusers "
                        "(e.g. FLUX.1-Kontext-dev) for first-frame inpainting with a reference image.",
            inputs=[
                io.Combo.Input("folder", options=diffusers_folders(),
                               tooltip="A diffusers folder (with model_index.json) under models/diffusers."),
                io.Combo.Input("precision", options=PRECISIONS, default="auto",
                               tooltip="auto: bfloat16 on GPU, float32 on CPU."),
                io.Combo.Input("offload", options=["none", "model"], default="model",
                               tooltip="model: one component on the GPU at a time (fits 24 GB cards)."),
            ],
            outputs=[ImageInpainter.Output(display_name="inpainter",
                                            tooltip="The Flux Kontext pipeline, for First Frame Inpaint.")],
            hidden=[io.Hidden.unique_id],  # validate_inputs: which node of the prompt it is
        )

    @classmethod
    def execute(cls, folder, precision, offload) -> io.NodeOutput:
        require_models(cls, {"folder": ("diffusers", folder)})
        check_combos(cls, locals())
        device = _device()
        pipe = core_inpaint.load_kontext(diffusers_path(folder), device, wan.resolve_dtype(precision, device), offload)
        return io.NodeOutput(pipe)

    @classmethod
    def validate_inputs(cls, folder):
        return (workflow_problem(cls.hidden.unique_id) or missing_models_problem(cls, {"folder": ("diffusers", folder)})
                or validate_combos(cls, folder=folder))


class FirstFrameInpaint(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_FirstFrameInpaint",
            display_name="Inpaint First Frame",
            category=STAGE,
            description="Put the object into frame 0 at its mask: Flux Kontext with the reference image, or (no "
                        "weights) the anchor render Poisson-blended in with colour matching.",
            inputs=[
                io.Image.Input("frames", tooltip="The scene video; frame 0 is inpainted."),
                io.Mask.Input("masks", tooltip="Object masks; the first one is used."),
                io.Combo.Input("method", options=["auto", "poisson", "kontext"], default="auto",
                               tooltip="auto: kontext when an inpainter is connected, else poisson."),
                io.String.Input("prompt", default="", multiline=True,
                                tooltip="Kontext: what to put there, e.g. 'a red ceramic mug on the table'."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Kontext noise seed: the same seed gives the same picture."),
                io.Int.Input("steps", default=28, min=1, max=200, tooltip="Kontext denoising steps."),
                io.Float.Input("guidance", default=2.5, min=0.0, max=30.0, step=0.1, tooltip="Kontext guidance."),
                io.Combo.Input("resolution", options=list(KONTEXT_RESOLUTIONS), default="preferred",
                               tooltip="preferred: Kontext's trained size (best); input: the frame's size."),
                io.Float.Input("colour_strength", default=0.3, min=0.0, max=1.0, step=0.05,
                               tooltip="Poisson: how much of the scene's light and colour cast the object takes on."),
                io.Float.Input("harmonize", default=0.15, min=0.0, max=1.0, step=0.05,
                               tooltip="Poisson: share of the Poisson colour correction kept inside the object "
                                       "(edges always get all of it)."),
                io.Image.Input("render", optional=True,
                               tooltip="Poisson: the object drawn at its placement (Reproject's anchor_video)."),
                io.Image.Input("reference", optional=True, tooltip="Kontext: a picture of the object."),
                ImageInpainter.Input("inpainter", optional=True,
                                     tooltip="Flux Kontext from its loader; needed for method kontext (auto uses "
                                             "it when connected)."),
            ],
            outputs=[io.Image.Output(display_name="first_frame", tooltip="Frame 0 with the object.")],
        )

    @classmethod
    def execute(cls, frames, masks, method, prompt, seed, steps, guidance, resolution, colour_strength, harmonize,
                render=None, reference=None, inpainter=None) -> io.NodeOutput:
        check_combos(cls, locals())
        scene = _first(frames, "frames")
        mask = _masks(masks, 1, scene.shape[:2], "masks")[0]
        if method == "auto":
            method = "kontext" if inpainter is not None else "poisson"
        if method == "kontext":
            if inpainter is None:
                raise InsertAnywhereError("Method 'kontext' needs the Flux Kontext Inpaint Loader connected.")
            _free_comfy_memory()
            ref = _first(reference, "reference") if reference is not None else None
            options = KontextOptions(steps=steps, guidance=guidance, seed=seed, resolution=resolution)
            result = core_inpaint.kontext_inpaint(inpainter, scene, mask, ref, prompt, options,
                                                  progress=progress_bar(steps))
        else:
            if render is None:
                raise InsertAnywhereError(
                    "Poisson inpainting needs the object render: connect Reproject's anchor_video to 'render' "
                    "(or connect a Flux Kontext inpainter)."
                )
            drawn = core_conditioning.resize_frames(_first(render, "render")[None], scene.shape[:2])[0]
            result = core_inpaint.poisson_insert(scene, drawn, mask, colour_strength=colour_strength,
                                                 harmonize=harmonize)
        return io.NodeOutput(frames_to_image(result[None]))


# --------------------------------------------------------------------------------------------- Wan VACE


class WanVACELoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_WanVACELoader",
            display_name="Wan VACE Loader (diffusers)",
            category=STAGE,
            description="Wan2.1 VACE for diffusers' WanVACEPipeline from a local diffusers folder and/or ComfyUI "
                        "single files (diffusion_models / vae / text_encoders), with memory options for 24 GB cards.",
            inputs=[
                io.Combo.Input("diffusers_folder", options=[NONE, *diffusers_folders()], default=NONE,
                               tooltip="e.g. Wan2.1-VACE-1.3B-diffusers under models/diffusers."),
                io.Combo.Input("transformer", options=[FROM_FOLDER, *model_options("diffusion_models")],
                               default=FROM_FOLDER,
                               tooltip="Single file, e.g. wan2.1_vace_14B_fp16.safetensors (fp8 / scaled fp8 too)."),
                io.Combo.Input("vae", options=[FROM_FOLDER, *model_options("vae")], default=FROM_FOLDER,
                               tooltip="Single file, e.g. wan_2.1_vae.safetensors."),
                io.Combo.Input("text_encoder", options=[FROM_FOLDER, *model_options("text_encoders")],
                               default=FROM_FOLDER,
                               tooltip="Single file, e.g. umt5_xxl_fp8_e4m3fn_scaled.safetensors."),
                io.Combo.Input("precision", options=PRECISIONS, default="auto",
                               tooltip="Transformer and text encoder dtype; auto: bfloat16 on GPU, float32 on CPU. "
                                       "The VAE always runs float32."),
                io.Combo.Input("offload", options=list(wan.OFFLOAD_MODES), default="none",
                               tooltip="model: one model on the GPU at a time; group: transformer blocks streamed "
                                       "to the GPU (least VRAM, slower). 14B on 24 GB: group or fp8 + model."),
                io.Boolean.Input("fp8_layerwise", default=False,
                                 tooltip="Keep transformer weights in float8 and upcast layer by layer "
                                         "(halves their memory, small quality cost)."),
                io.Boolean.Input("vae_tiling", default=False,
                                 tooltip="Encode/decode the VAE in 256 px tiles (less VRAM for large frames)."),
            ],
            outputs=[WanVACE.Output(display_name="model", tooltip=WAN_TIP)],
            hidden=[io.Hidden.unique_id],  # validate_inputs: which node of the prompt it is
        )

    @classmethod
    def execute(cls, diffusers_folder, transformer, vae, text_encoder, precision, offload, fp8_layerwise,
                vae_tiling) -> io.NodeOutput:
        require_models(cls, _wan_files(diffusers_folder, transformer, vae, text_encoder))
        check_combos(cls, locals())
        def single(folder_name: str, choice: str):
            return None if choice == FROM_FOLDER else model_path(folder_name, choice)

        model = wan.load_wan_vace(
            folder=None if diffusers_folder == NONE else diffusers_path(diffusers_folder),
            transformer_file=single("diffusion_models", transformer), vae_file=single("vae", vae),
            text_encoder_file=single("text_encoders", text_encoder), device=_device(), dtype=precision,
            memory=wan.MemoryOptions(offload=offload, fp8_layerwise=fp8_layerwise, vae_tiling=vae_tiling),
        )
        return io.NodeOutput(model)

    @classmethod
    def validate_inputs(cls, diffusers_folder):  # one input only: ComfyUI repeats the message for each named input
        return (workflow_problem(cls.hidden.unique_id)
                or missing_models_problem(cls, {"diffusers_folder": ("diffusers", diffusers_folder)})
                or validate_combos(cls, diffusers_folder=diffusers_folder))


def _wan_files(diffusers_folder, transformer, vae, text_encoder) -> dict:
    return {"diffusers_folder": ("diffusers", diffusers_folder), "transformer": ("diffusion_models", transformer),
            "vae": ("vae", vae), "text_encoder": ("text_encoders", text_encoder)}


class WanVACELoRA(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_WanVACELoRA",
            display_name="Wan VACE LoRA",
            category=STAGE,
            description="Add a LoRA from models/loras (ComfyUI/original, kohya/Musubi or diffusers/PEFT keys) with a "
                        "strength. Chain several to stack them; the loaded model itself is not changed.",
            inputs=[
                WanVACE.Input("model", tooltip=WAN_TIP),
                io.Combo.Input("lora", options=model_options("loras"),
                               tooltip="e.g. the InsertAnywhere insertion LoRA."),
                io.Float.Input("strength", default=1.0, min=-4.0, max=4.0, step=0.05,
                               tooltip="0 = off, 1 = as trained."),
            ],
            outputs=[WanVACE.Output(display_name="model", tooltip=WAN_TIP)],
            hidden=[io.Hidden.unique_id],  # validate_inputs: which node of the prompt it is
        )

    @classmethod
    def execute(cls, model, lora, strength) -> io.NodeOutput:
        require_models(cls, {"lora": ("loras", lora)})
        check_combos(cls, locals())
        from insertanywhere.insertion.lora import read_lora

        return io.NodeOutput(model.with_lora(read_lora(model_path("loras", lora), model.transformer, strength)))

    @classmethod
    def validate_inputs(cls, lora):  # strength keeps ComfyUI's min/max check
        return (workflow_problem(cls.hidden.unique_id) or missing_models_problem(cls, {"lora": ("loras", lora)})
                or validate_combos(cls, lora=lora))


def _vace_inputs(default_grow: int = 4) -> list:
    return [
        io.Image.Input("frames", tooltip="The original scene video."),
        io.Mask.Input("masks", tooltip="Object masks (white = object), one per frame."),
        io.Image.Input("first_frame", tooltip="Frame 0 with the object inpainted (any IMAGE works)."),
        io.Combo.Input("mask_fill", options=list(core_conditioning.MASK_FILLS), default="gray",
                       tooltip="gray: masked pixels of later frames are grey (VACE's 'generate here'); keep: "
                               "leave the scene pixels as a hint."),
        io.Int.Input("mask_grow", default=default_grow, min=0, max=128,
                     tooltip="Grow the masks by this many pixels so there is room for shadows and contact."),
        io.Int.Input("max_side", default=0, min=0, max=4096, step=16,
                     tooltip="Work at most this large (longer side); 0 keeps the video's size. Sizes snap to 16."),
    ]


class VACEInsert(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_VACEInsert",
            display_name="VACE Insert (diffusers)",
            category=STAGE,
            description="Generate the object into the video with Wan VACE (+ LoRAs): control video = scene with the "
                        "inpainted frame 0, masks with frame 0 zeroed, the reference image and the prompt. Longer "
                        "videos run in overlapping windows with colour locked between them.",
            inputs=[
                WanVACE.Input("model", tooltip=WAN_TIP),
                *_vace_inputs(),
                io.String.Input("prompt", default="", multiline=True, tooltip="What the object is, e.g. 'a red mug'."),
                io.String.Input("negative_prompt", default=vace.DEFAULT_NEGATIVE, multiline=True,
                                tooltip="What to steer away from (used when cfg > 1)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed: the same seed and inputs give the same video."),
                io.Int.Input("steps", default=30, min=1, max=200,
                             tooltip="Denoising steps per window; more is slower and usually cleaner (20-50)."),
                io.Float.Input("cfg", default=5.0, min=0.0, max=30.0, step=0.1, tooltip="1 or less turns CFG off."),
                io.Float.Input("shift", default=3.0, min=0.0, max=20.0, step=0.1,
                               tooltip="Flow shift: 3 for 480p, 5 for 720p."),
                io.Combo.Input("scheduler", options=list(wan.SCHEDULERS), default="unipc",
                               tooltip="Sampler of the flow schedule: unipc (Wan's default), euler or dpm++."),
                io.Float.Input("conditioning_scale", default=1.0, min=0.0, max=3.0, step=0.05,
                               tooltip="Strength of the VACE control."),
                io.Int.Input("window", default=81, min=5, max=257, step=4,
                             tooltip="Frames per window (4k+1); longer videos are split into windows."),
                io.Int.Input("overlap", default=9, min=1, max=80,
                             tooltip="Frames each window takes over from the previous one."),
                io.Boolean.Input("colour_lock", default=True, tooltip="Match each window's colours to the previous."),
                io.Image.Input("reference", optional=True, tooltip="A picture of the object (VACE reference image)."),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip="Generated frames at the input size; "
                                                                    "paste them back with Composite Back.")],
        )

    @classmethod
    def execute(cls, model, frames, masks, first_frame, mask_fill, mask_grow, max_side, prompt, negative_prompt, seed,
                steps, cfg, shift, scheduler, conditioning_scale, window, overlap, colour_lock,
                reference=None) -> io.NodeOutput:
        check_combos(cls, locals())
        options = VACEOptions(seed=seed, steps=steps, cfg=cfg, shift=shift, scheduler=scheduler,
                              conditioning_scale=conditioning_scale, mask_fill=mask_fill, grow=mask_grow,
                              max_side=max_side, window=window, overlap=overlap, colour_lock=colour_lock)
        video = image_to_frames(frames)
        object_masks = _masks(masks, len(video), video.shape[1:3], "masks")
        windows = plan_windows(core_conditioning.padded_count(len(video)), window, overlap)
        _free_comfy_memory()
        out = vace.insert_object(
            model, video, object_masks, _first(first_frame, "first_frame"),
            _first(reference, "reference") if reference is not None else None, prompt, negative_prompt, options,
            progress=progress_bar(len(windows) * steps))
        return io.NodeOutput(frames_to_image(out))


class VACENativeInputs(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_VACENativeInputs",
            display_name="VACE Native Inputs",
            category=STAGE,
            description="The same conditioning as VACE Insert for core WanVaceToVideo: control_video, control_masks "
                        "and reference_image (+ width/height/length), so you can sample with UNETLoader, "
                        "LoraLoaderModelOnly, KSampler and TrimVideoLatent and your own Wan files.",
            inputs=[*_vace_inputs(), io.Image.Input("reference", optional=True,
                                                    tooltip="A picture of the object; padded onto white at the "
                                                            "video size so WanVaceToVideo does not crop it.")],
            outputs=[
                io.Image.Output(display_name="control_video", tooltip="For WanVaceToVideo's control_video: the scene "
                                "with the inpainted frame 0, grey where the object goes."),
                io.Mask.Output(display_name="control_masks", tooltip="White = generate; frame 0 is kept."),
                io.Image.Output(display_name="reference_image", tooltip="For WanVaceToVideo's reference_image "
                                "(empty without a reference)."),
                io.Int.Output(display_name="width", tooltip="Working width for WanVaceToVideo (multiple of 16)."),
                io.Int.Output(display_name="height", tooltip="Working height for WanVaceToVideo (multiple of 16)."),
                io.Int.Output(display_name="length", tooltip="4k+1 frames covering the clip (the last frame "
                                                             "repeats); Composite Back drops the extra ones."),
            ],
        )

    @classmethod
    def execute(cls, frames, masks, first_frame, mask_fill, mask_grow, max_side, reference=None) -> io.NodeOutput:
        check_combos(cls, locals())
        video = image_to_frames(frames)
        inputs = core_conditioning.prepare(
            video, _masks(masks, len(video), video.shape[1:3], "masks"), _first(first_frame, "first_frame"),
            _first(reference, "reference") if reference is not None else None, mask_fill=mask_fill, grow=mask_grow,
            max_side=max_side)
        height, width = inputs.work_size
        ref = frames_to_image(inputs.reference[None]) if inputs.reference is not None else None
        return io.NodeOutput(frames_to_image(inputs.video), masks_to_tensor(inputs.masks), ref, width, height,
                             len(inputs.video))


# --------------------------------------------------------------------------------------------- composite


class CompositeBack(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="IA_CompositeBack",
            display_name="Composite Back",
            category=STAGE,
            description="Paste the generated object into the original frames through a dilated, feathered mask, "
                        "colour-matched to the original around it; every other pixel stays exactly the input.",
            inputs=[
                io.Image.Input("original", tooltip="The original frames."),
                io.Image.Input("generated", tooltip="VACE output (any size; extra padding frames are dropped)."),
                io.Mask.Input("masks", tooltip="Object masks, one per original frame."),
                io.Int.Input("dilate", default=8, min=0, max=256, tooltip="Grow the masks (room for shadows)."),
                io.Int.Input("feather", default=6, min=0, max=256, tooltip="Soft edge width outside the grown mask."),
                io.Boolean.Input("colour_match", default=True,
                                 tooltip="Match the generated colours to the original in a ring around the mask."),
                io.Int.Input("ring", default=12, min=1, max=256, tooltip="Width of that ring in pixels."),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip="The original frames with the object pasted in.")],
        )

    @classmethod
    def execute(cls, original, generated, masks, dilate, feather, colour_match, ring) -> io.NodeOutput:
        video = image_to_frames(original)
        out = core_composite.composite(video, image_to_frames(generated),
                                       _masks(masks, len(video), video.shape[1:3], "masks"), dilate=dilate,
                                       feather=feather, colour_match=colour_match, ring=ring,
                                       progress=progress_bar(len(video)))
        return io.NodeOutput(frames_to_image(out))


NODES = [SAM2Loader, SAM2Refine, FluxKontextLoader, FirstFrameInpaint, WanVACELoader, WanVACELoRA, VACEInsert,
         VACENativeInputs, CompositeBack]
