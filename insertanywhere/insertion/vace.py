"""Object insertion with Wan2.1 VACE (+ LoRAs) through diffusers' WanVACEPipeline.

`insert_object` builds InsertAnywhere's conditioning (conditioning.py), splits
long videos into overlapping windows (long_video.py), samples every window
with the LoRAs applied at their strengths, and returns frames at the input's
size and count. One progress step per denoising step; the progress callback
may raise to cancel (ComfyUI's Cancel button does).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..errors import InsertAnywhereError
from ..progress import Progress, report
from . import conditioning, long_video
from .lora import applied_loras
from .wan import SCHEDULERS, WanVACEModel, make_scheduler

DEFAULT_NEGATIVE = ("bright tones, overexposed, static, blurred details, subtitles, worst quality, low quality, "
                    "JPEG compression residue, ugly, deformed, disfigured, still picture, messy background")


def _pil(frames: np.ndarray, mode: str) -> list:
    from PIL import Image

    return [Image.fromarray(f, mode=mode) if mode == "RGB" else Image.fromarray(f) for f in frames]


def sample_window(model: WanVACEModel, video: np.ndarray, masks: np.ndarray, reference: Optional[np.ndarray],
                  prompt_embeds: torch.Tensor, negative_embeds: Optional[torch.Tensor], *, seed: int, steps: int,
                  cfg: float, scheduler: str, shift: float, conditioning_scale: float,
                  on_step=None) -> np.ndarray:
    """One VACE call: video uint8 [N, h, w, 3] (N = 4k+1), masks float [N, h, w] -> uint8 [N, h, w, 3]."""
    pipe = model.pipe
    pipe.scheduler = make_scheduler(scheduler, shift)
    height, width = video.shape[1:3]
    mask_images = (masks > 0.5).astype(np.uint8) * 255

    def callback(_pipe, step, _timestep, kwargs):
        if on_step is not None:
            on_step(step + 1)
        return kwargs

    generator = torch.Generator("cpu").manual_seed(int(seed))
    with applied_loras(pipe.transformer, model.loras):
        result = pipe(
            video=_pil(video, "RGB"), mask=_pil(mask_images, "L"),
            reference_images=None if reference is None else _pil(reference[None], "RGB")[0],
            prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds if cfg > 1 else None,
            height=height, width=width, num_frames=len(video), num_inference_steps=steps, guidance_scale=cfg,
            conditioning_scale=conditioning_scale, generator=generator, output_type="np",
            callback_on_step_end=callback,
        )
    frames = np.asarray(result.frames[0])
    return np.clip(frames * 255 + 0.5, 0, 255).astype(np.uint8)


def insert_object(model: WanVACEModel, frames: np.ndarray, masks: np.ndarray, first_frame: np.ndarray,
                  reference: Optional[np.ndarray], prompt: str, negative_prompt: str = DEFAULT_NEGATIVE, *,
                  seed: int = 0, steps: int = 30, cfg: float = 5.0, shift: float = 3.0, scheduler: str = "unipc",
                  conditioning_scale: float = 1.0, mask_fill: str = "gray", grow: int = 0, max_side: int = 0,
                  window: int = 81, overlap: int = 9, colour_lock: bool = True,
                  progress: Optional[Progress] = None) -> np.ndarray:
    """Generate the object into the scene video.

    frames uint8 [F, H, W, 3] (the original video), masks bool [F, H, W] (white = object),
    first_frame uint8 [H, W, 3] (frame 0 with the object inpainted), reference uint8 [h, w, 3] or None.
    Returns uint8 [F, H, W, 3]: whole generated frames (paste them back with composite.composite).
    """
    if scheduler not in SCHEDULERS:
        raise InsertAnywhereError(f"Unknown scheduler '{scheduler}'; use one of {SCHEDULERS}.")
    if steps < 1:
        raise InsertAnywhereError("Steps must be at least 1.")
    inputs = conditioning.prepare(frames, masks, first_frame, reference, mask_fill=mask_fill, grow=grow,
                                  max_side=max_side)
    windows = long_video.plan_windows(len(inputs.video), window, overlap)
    total = len(windows) * steps
    embeds = model.prompts.encode([prompt, negative_prompt], device=model.device)
    positive, negative = embeds[:1], embeds[1:]

    def sample(video: np.ndarray, window_masks: np.ndarray, index: int) -> np.ndarray:
        return sample_window(model, video, window_masks, inputs.reference, positive, negative,
                             seed=(seed + index) % 2**64, steps=steps, cfg=cfg, scheduler=scheduler, shift=shift,
                             conditioning_scale=conditioning_scale,
                             on_step=lambda step: report(progress, index * steps + step, total))

    generated = long_video.generate(inputs.video, inputs.masks, sample, windows, colour_lock=colour_lock)
    return conditioning.restore(generated, inputs)
