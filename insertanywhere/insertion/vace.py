"""Object insertion with Wan2.1 VACE (+ LoRAs) through diffusers' WanVACEPipeline.

`insert_object` builds InsertAnywhere's conditioning (conditioning.py), splits
long videos into overlapping windows (long_video.py), samples every window
with the LoRAs applied at their strengths, and returns frames at the input's
size and count. One progress step per denoising step; the progress callback
may raise to cancel (ComfyUI's Cancel button does).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np
import torch

from ..progress import Progress, report
from . import conditioning, long_video
from .lora import applied_loras
from .options import VACEOptions
from .wan import WanVACEModel, make_scheduler

DEFAULT_NEGATIVE = ("bright tones, overexposed, static, blurred details, subtitles, worst quality, low quality, "
                    "JPEG compression residue, ugly, deformed, disfigured, still picture, messy background")


def _pil(frames: np.ndarray, mode: str) -> list:
    from PIL import Image

    return [Image.fromarray(f, mode=mode) if mode == "RGB" else Image.fromarray(f) for f in frames]


def sample_window(model: WanVACEModel, video: np.ndarray, masks: np.ndarray, reference: Optional[np.ndarray],
                  prompt_embeds: torch.Tensor, negative_embeds: Optional[torch.Tensor], options: VACEOptions, *,
                  on_step=None) -> np.ndarray:
    """One VACE call: video uint8 [N, h, w, 3] (N = 4k+1), masks float [N, h, w] -> uint8 [N, h, w, 3].

    options: its seed, steps, cfg, scheduler, shift and conditioning_scale (the rest is insert_object's).
    """
    pipe = model.pipe
    pipe.scheduler = make_scheduler(options.scheduler, options.shift)
    cfg = options.cfg
    height, width = video.shape[1:3]
    mask_images = (masks > 0.5).astype(np.uint8) * 255

    def callback(_pipe, step, _timestep, kwargs):
        if on_step is not None:
            on_step(step + 1)
        return kwargs

    generator = torch.Generator("cpu").manual_seed(int(options.seed))
    with applied_loras(pipe.transformer, model.loras):
        result = pipe(
            video=_pil(video, "RGB"), mask=_pil(mask_images, "L"),
            reference_images=None if reference is None else _pil(reference[None], "RGB")[0],
            prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds if cfg > 1 else None,
            height=height, width=width, num_frames=len(video), num_inference_steps=options.steps,
            guidance_scale=cfg, conditioning_scale=options.conditioning_scale, generator=generator, output_type="np",
            callback_on_step_end=callback,
        )
    frames = np.asarray(result.frames[0])
    return np.clip(frames * 255 + 0.5, 0, 255).astype(np.uint8)


def insert_object(model: WanVACEModel, frames: np.ndarray, masks: np.ndarray, first_frame: np.ndarray,
                  reference: Optional[np.ndarray], prompt: str, negative_prompt: str = DEFAULT_NEGATIVE,
                  options: Optional[VACEOptions] = None, *, progress: Optional[Progress] = None) -> np.ndarray:
    """Generate the object into the scene video.

    frames uint8 [F, H, W, 3] (the original video), masks bool [F, H, W] (white = object),
    first_frame uint8 [H, W, 3] (frame 0 with the object inpainted), reference uint8 [h, w, 3] or None.
    options: VACEOptions (sampling, conditioning and windowing knobs); None: the defaults.
    Returns uint8 [F, H, W, 3]: whole generated frames (paste them back with composite.composite).
    """
    options = VACEOptions() if options is None else options
    steps = options.steps
    inputs = conditioning.prepare(frames, masks, first_frame, reference, mask_fill=options.mask_fill,
                                  grow=options.grow, max_side=options.max_side)
    windows = long_video.plan_windows(len(inputs.video), options.window, options.overlap)
    total = len(windows) * steps
    embeds = model.prompts.encode([prompt, negative_prompt], device=model.device)
    positive, negative = embeds[:1], embeds[1:]

    def sample(video: np.ndarray, window_masks: np.ndarray, index: int) -> np.ndarray:
        window_options = replace(options, seed=(options.seed + index) % 2**64)
        return sample_window(model, video, window_masks, inputs.reference, positive, negative, window_options,
                             on_step=lambda step: report(progress, index * steps + step, total))

    generated = long_video.generate(inputs.video, inputs.masks, sample, windows, colour_lock=options.colour_lock)
    return conditioning.restore(generated, inputs)
