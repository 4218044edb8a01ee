"""Pasting the generated object back into the original frames.

The generated video is only trusted near the object: each mask is dilated
(room for the object's shadow and contact), feathered outward, and the
generated pixels are blended in through it. Before blending, the generated
frame's colours are matched to the original in a ring just outside the
dilated mask (a per-channel gain/offset), so the pasted region does not show
the VAE's slight colour shift. Every pixel the feathered mask does not reach
is copied from the input unchanged (bit-identical).

Shapes: original / generated uint8 [F, H, W, 3]; masks bool [F, H, W].
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InsertAnywhereError
from ..progress import Progress, report
from .conditioning import resize_frames
from .long_video import apply_colour, colour_fit


def _disk(radius: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def blend_alpha(mask: np.ndarray, dilate: int, feather: int) -> np.ndarray:
    """float32 [H, W] alpha: 1 on the mask dilated by `dilate`, falling to 0 over `feather` pixels outside."""
    import cv2

    hard = mask.astype(np.uint8)
    if dilate > 0:
        hard = cv2.dilate(hard, _disk(dilate))
    if feather <= 0:
        return hard.astype(np.float32)
    outside = cv2.distanceTransform(1 - hard, cv2.DIST_L2, 5)
    alpha = np.clip(1.0 - outside / (feather + 1), 0.0, 1.0).astype(np.float32)
    alpha = 0.5 - 0.5 * np.cos(np.pi * alpha)  # smooth start and end of the ramp
    alpha[hard > 0] = 1.0
    return alpha


def match_ring(original: np.ndarray, generated: np.ndarray, alpha: np.ndarray, ring: int) -> np.ndarray:
    """Generated frame colour-matched to the original in a `ring`-pixel band just outside `alpha`."""
    import cv2

    support = (alpha > 0).astype(np.uint8)
    band = (cv2.dilate(support, _disk(ring)) > 0) & (support == 0)
    if band.sum() < 16:
        return generated
    gain, offset = colour_fit(generated[band], original[band])
    return apply_colour(generated, gain, offset)


def composite(original: np.ndarray, generated: np.ndarray, masks: np.ndarray, *, dilate: int = 8,
              feather: int = 6, colour_match: bool = True, ring: int = 12,
              progress: Optional[Progress] = None) -> np.ndarray:
    """Blend `generated` into `original` near `masks`; outside the feathered region the output is the input.

    `generated` may have more frames (Wan's 4k+1 padding: the extra ones are dropped) or another size
    (resized to the original's).
    """
    if original.ndim != 4 or original.shape[-1] != 3 or original.dtype != np.uint8:
        raise InsertAnywhereError(f"Original frames must be uint8 [F, H, W, 3], got {original.dtype} {original.shape}.")
    num, height, width = original.shape[:3]
    if len(generated) < num:
        raise InsertAnywhereError(
            f"The generated video has {len(generated)} frames but the original {num}; generate at least as many "
            "frames (the VACE length must cover the whole clip)."
        )
    if len(masks) < num:
        raise InsertAnywhereError(f"{len(masks)} masks for {num} frames; give one mask per frame.")
    generated = resize_frames(generated[:num], (height, width))
    masks = masks[:num]
    if masks.shape[1:] != (height, width):
        from .conditioning import resize_masks

        masks = resize_masks(masks, (height, width))
    out = original.copy()
    for i in range(num):
        alpha = blend_alpha(masks[i], dilate, feather)
        inside = alpha > 0
        if inside.any():
            gen = match_ring(original[i], generated[i], alpha, ring) if colour_match else generated[i]
            a = alpha[inside][:, None]
            mixed = original[i][inside].astype(np.float32) * (1 - a) + gen[inside].astype(np.float32) * a
            out[i][inside] = np.clip(mixed.round(), 0, 255).astype(np.uint8)
        report(progress, i + 1, num)
    return out
