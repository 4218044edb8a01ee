"""Conversions between ComfyUI tensors and the core's numpy arrays.

IMAGE: torch float [B, H, W, C] in 0..1   <->  frames uint8 [F, H, W, 3]
MASK:  torch float [B, H, W] in 0..1      <->  masks bool [F, H, W]
"""

from __future__ import annotations

import numpy as np
import torch

from insertanywhere.errors import InsertAnywhereError


def image_to_frames(image: torch.Tensor) -> np.ndarray:
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4) or image.shape[0] == 0:
        raise InsertAnywhereError(f"Expected an IMAGE batch [B, H, W, C], got shape {tuple(image.shape)}.")
    rgb = image[..., :3] if image.shape[-1] != 1 else image.expand(-1, -1, -1, 3)
    return (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def frames_to_image(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0)


def mask_to_numpy(mask: torch.Tensor) -> np.ndarray:
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise InsertAnywhereError(f"Expected a MASK [B, H, W], got shape {tuple(mask.shape)}.")
    return (mask > 0.5).cpu().numpy()


def masks_to_tensor(masks: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(masks)).float()


def image_to_gray(image: torch.Tensor) -> np.ndarray:
    """An IMAGE used as a single-channel map (e.g. a depth node's output) -> float32 [B, H, W]."""
    if image.ndim != 4:
        raise InsertAnywhereError(f"Expected an IMAGE batch [B, H, W, C], got shape {tuple(image.shape)}.")
    return image[..., :3].mean(dim=-1).float().cpu().numpy()
