"""VACE conditioning for training, built by the same code that conditions the model at inference.

At inference `insertion.conditioning.prepare` turns (video, masks, first frame, reference) into
the control video (frame 0 = the known first frame, pixels under the masks grey unless
mask_fill="keep"), masks (frame 0 all zero) and a reference on a white canvas, and
`insertion.vace.sample_window` hands them to diffusers' `WanVACEPipeline`, which feeds the
transformer `control_hidden_states` [B, 96, R + T, h, w]:
  channels  0..15  inactive latents  = VAE(video * (1 - mask))      (the kept pixels)
  channels 16..31  reactive latents  = VAE(video * mask)            (the pixels to change)
  channels 32..95  the mask, each 8 x 8 pixel block unfolded into 64 channels
and R reference slots in front in time: the reference image's latent in channels 0..15,
zeros in 16..31 and a zero mask. The noise latents have R + T frames too; the first R
are dropped after sampling. (T = (F - 1) / 4 + 1 latent frames, h = H / 8, w = W / 8.)

Here a sample goes through the same `prepare` and pipeline methods; the video part and the
reference latents are encoded once (they are what the latent cache stores) and
`assemble_control` joins them in the pipeline's layout. A test captures what the sampler
really gives the transformer and checks the trainer builds the same tensor.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..errors import InsertAnywhereError
from ..insertion.conditioning import VACEInputs
from ..insertion.conditioning import prepare as vace_prepare


def _pil(frames: np.ndarray, mode: str) -> list:
    from PIL import Image

    return [Image.fromarray(np.ascontiguousarray(f), mode=mode) if mode == "RGB" else
            Image.fromarray(np.ascontiguousarray(f)) for f in frames]


def check_sizes(pipe, frames: np.ndarray) -> None:
    """Raise when frames [F, H, W, 3] do not fit the model (H, W multiples of 16; F = 4k + 1)."""
    F, H, W = frames.shape[:3]
    base = pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size[1]
    if H % base or W % base:
        raise InsertAnywhereError(f"Sample size {W}x{H} is not a multiple of {base}; rebuild the dataset.")
    if (F - 1) % pipe.vae_scale_factor_temporal:
        raise InsertAnywhereError(f"Sample has {F} frames; Wan needs 4k+1 (5, 9, ..., 81). Rebuild the dataset.")


def inference_inputs(inputs: np.ndarray, region: np.ndarray, reference: Optional[np.ndarray],
                     mask_fill: str) -> VACEInputs:
    """The sample put through the sampler's own `insertion.conditioning.prepare`: frame 0 of `inputs`
    is the known first frame, `region` [F, H, W] the masks, the pixels under them filled as
    `mask_fill` says, the reference fitted on a white canvas."""
    return vace_prepare(inputs, region, inputs[0], reference, mask_fill=mask_fill, grow=0)


def preprocess(pipe, prepared: VACEInputs, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, list]:
    """The pipeline's own input preprocessing, fed as `insertion.vace.sample_window` feeds it:
    (video [1, 3, F, H, W] in -1..1, mask [1, 1, F, H, W] in 0..1, reference canvases [[ [3, H, W] ]])."""
    video = prepared.video
    check_sizes(pipe, video)
    F, H, W = video.shape[:3]
    masks = (prepared.masks > 0.5).astype(np.uint8) * 255
    ref = None if prepared.reference is None else _pil(prepared.reference[None], "RGB")[0]
    return pipe.preprocess_conditions(_pil(video, "RGB"), _pil(masks, "L"), ref, 1, H, W, F, torch.float32, device)


def normalize_latents(pipe, latents: torch.Tensor) -> torch.Tensor:
    """VAE latents [B, 16, T, h, w] -> the model's normalised space (as the pipeline does)."""
    cfg = pipe.vae.config
    mean = torch.tensor(cfg.latents_mean, device=latents.device, dtype=torch.float32).view(1, cfg.z_dim, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(cfg.latents_std, device=latents.device, dtype=torch.float32).view(
        1, cfg.z_dim, 1, 1, 1)
    return (latents.float() - mean) * inv_std


@torch.no_grad()
def encode_frames(pipe, frames: torch.Tensor) -> torch.Tensor:
    """Normalised mode latents [1, 16, T, h, w] of pixels [1, 3, F, H, W] in -1..1."""
    from diffusers.pipelines.wan.pipeline_wan_vace import retrieve_latents

    dist = pipe.vae.encode(frames.to(pipe.vae.device, pipe.vae.dtype))
    return normalize_latents(pipe, retrieve_latents(dist, sample_mode="argmax"))


@torch.no_grad()
def encode_sample(pipe, target: np.ndarray, inputs: np.ndarray, region: np.ndarray,
                  references: list[np.ndarray], mask_fill: str = "gray") -> dict[str, torch.Tensor]:
    """Everything the trainer needs from the VAE for one sample (all float32, on the CPU):

    target      [16, T, h, w]    the present video
    video_cond  [32, T, h, w]    inactive + reactive latents of the conditioning video under the mask
    references  [V, 16, 1, h, w] one latent per reference variant
    """
    device = pipe.vae.device
    prepared = inference_inputs(inputs, region, None, mask_fill)
    video, mask, _ = preprocess(pipe, prepared, device)
    cond = pipe.prepare_video_latents(video, mask, [[]], None, device)  # no reference: the video part only
    clean, _, _ = pipe.preprocess_conditions(_pil(target, "RGB"), None, None, 1, *target.shape[1:3],
                                             len(target), torch.float32, device)
    refs = []
    for reference in references:
        with_ref = inference_inputs(inputs[:1], region[:1], reference, mask_fill)
        _, _, canvases = preprocess(pipe, with_ref, device)
        refs.append(encode_frames(pipe, canvases[0][0][None, :, None]))
    return {
        "target": encode_frames(pipe, clean)[0].cpu(),
        "video_cond": cond[0].float().cpu(),
        "references": torch.cat(refs).cpu() if refs else torch.zeros(0),
    }


def mask_channels(pipe, region: np.ndarray, num_refs: int) -> torch.Tensor:
    """The pipeline's mask channels [64, R + T, h, w] of a bool region [F, H, W]."""
    mask = torch.from_numpy(region.astype(np.float32))[None, None].expand(1, 3, *region.shape)
    return pipe.prepare_masks(mask, [[None] * num_refs], None)[0]


def assemble_control(video_cond: torch.Tensor, reference: Optional[torch.Tensor],
                     masks: torch.Tensor) -> torch.Tensor:
    """control_hidden_states [96, R + T, h, w] from video_cond [32, T, h, w], an optional reference
    latent [16, 1, h, w] and mask channels [64, R + T, h, w], in the pipeline's layout."""
    latent = video_cond
    if reference is not None:
        slot = torch.cat([reference, torch.zeros_like(reference)], dim=0)
        latent = torch.cat([slot.to(latent.dtype), latent], dim=1)
    if masks.shape[1] != latent.shape[1]:
        raise InsertAnywhereError(f"Mask has {masks.shape[1]} latent frames but the video {latent.shape[1]}.")
    return torch.cat([latent, masks.to(latent.dtype)], dim=0)


def latent_region(region: np.ndarray, num_refs: int, temporal: int = 4, spatial: int = 8) -> torch.Tensor:
    """Bool [R + T, h, w]: latent cells whose pixels (the 8 x 8 block, and the 4 frames a latent
    frame covers; frame 0 alone) touch the region [F, H, W]. Reference slots are False."""
    F, H, W = region.shape
    cells = torch.from_numpy(region).reshape(F, H // spatial, spatial, W // spatial, spatial).any(4).any(2)
    groups = [cells[:1]] + [cells[i:i + temporal] for i in range(1, F, temporal)]
    per_latent = torch.stack([g.any(0) for g in groups])
    pad = torch.zeros((num_refs, *per_latent.shape[1:]), dtype=torch.bool)
    return torch.cat([pad, per_latent])


def dilate_cells(mask: torch.Tensor, cells: int) -> torch.Tensor:
    """Grow a bool latent mask [T, h, w] by `cells` in h and w (a square neighbourhood)."""
    if cells <= 0:
        return mask
    k = 2 * cells + 1
    grown = torch.nn.functional.max_pool2d(mask.float()[:, None], k, stride=1, padding=cells)
    return grown[:, 0] > 0


def encode_prompts(prompts_encoder, prompts: list[str], device: torch.device) -> dict[str, torch.Tensor]:
    """Text embeddings [L, D] per distinct prompt, by the sampler's own prompt encoder."""
    if prompts_encoder is None:
        raise InsertAnywhereError("The text encoder was released before every prompt was encoded; "
                                  "delete the dataset's cache/ folder and train again.")
    return {p: prompts_encoder.encode([p], device=device)[0].float().cpu() for p in sorted(set(prompts))}
