"""VACE conditioning as InsertAnywhere builds it, shared by the diffusers sampler and the native route.

  control video: the scene video with the inpainted first frame put in as frame 0; inside the
                 masks of later frames the pixels are grey (VACE's "generate here" value) unless
                 `mask_fill="keep"`
  masks:         1 (white) = generate, 0 = keep; frame 0 is all zeros, so the inpainted
                 first frame is kept and the object's look comes from it
  reference:     the object image, scaled to fit and centred on a white canvas of the video size
                 (the diffusers pipeline does this itself; the native node gets it ready-made so
                 WanVaceToVideo's centre crop does not cut the object)
Sizes are snapped to multiples of 16 and frame counts padded to 4k+1 (the last frame repeated).

Shapes: frames uint8 [F, H, W, 3]; masks bool [F, H, W]; first_frame / reference uint8 [h, w, 3].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InsertAnywhereError
from ..video import snap_size

MASK_FILLS = ("gray", "keep")
GRAY = 128


@dataclass
class VACEInputs:
    video: np.ndarray                 # uint8 [N, h, w, 3], N = 4k+1, h, w multiples of 16
    masks: np.ndarray                 # float32 [N, h, w] in {0, 1}; frame 0 all zero
    reference: Optional[np.ndarray]   # uint8 [h, w, 3] object on white, or None
    num_frames: int                   # F of the input
    size: tuple[int, int]             # (H, W) of the input

    @property
    def work_size(self) -> tuple[int, int]:
        return int(self.video.shape[1]), int(self.video.shape[2])


def padded_count(n: int) -> int:
    """Smallest 4k+1 >= n (Wan's VAE packs 4 frames per latent after the first)."""
    if n < 1:
        raise InsertAnywhereError("No frames to condition on: the video is empty.")
    return (n + 2) // 4 * 4 + 1


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [F, H, W, 3] -> [F, h, w, 3] (area when shrinking, bilinear when growing)."""
    import cv2

    h, w = size
    if frames.shape[1:3] == (h, w):
        return frames
    interp = cv2.INTER_AREA if h * w < frames.shape[1] * frames.shape[2] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in frames])


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bool [F, H, W] -> bool [F, h, w]; a pixel is set when at least half of what it covers is."""
    import cv2

    h, w = size
    if masks.shape[1:3] == (h, w):
        return masks.astype(bool)
    return np.stack([cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5 for m in masks])


def grow_masks(masks: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate every mask by `pixels` (room for shadows and contact)."""
    import cv2

    if pixels <= 0:
        return masks.astype(bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])


def pad_reference(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale `image` [h, w, 3] to fit `size` (H, W) keeping its aspect, centred on white."""
    import cv2

    height, width = size
    h, w = image.shape[:2]
    scale = min(height / h, width / w)
    nh, nw = max(1, int(h * scale)), max(1, int(w * scale))
    canvas = np.full((height, width, 3), 255, np.uint8)
    top, left = (height - nh) // 2, (width - nw) // 2
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas[top:top + nh, left:left + nw] = cv2.resize(image[..., :3], (nw, nh), interpolation=interp)
    return canvas


def _check(frames: np.ndarray, masks: np.ndarray, first_frame: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise InsertAnywhereError(f"Expected uint8 frames [F, H, W, 3], got {frames.dtype} {frames.shape}.")
    if masks.ndim != 3 or masks.shape[1:] != frames.shape[1:3]:
        raise InsertAnywhereError(
            f"Masks {masks.shape} do not match the frames {frames.shape[:3]}; use the masks made for this video."
        )
    if len(masks) < len(frames):
        raise InsertAnywhereError(f"{len(masks)} masks for {len(frames)} frames; give one mask per frame.")
    if first_frame.ndim != 3 or first_frame.shape[-1] != 3:
        raise InsertAnywhereError(f"The first frame must be one RGB image [H, W, 3], got {first_frame.shape}.")


def prepare(frames: np.ndarray, masks: np.ndarray, first_frame: np.ndarray, reference: Optional[np.ndarray] = None,
            *, mask_fill: str = "gray", grow: int = 0, max_side: int = 0, multiple: int = 16) -> VACEInputs:
    """Build the VACE control video, masks and reference from the scene video and the inpainted frame 0."""
    _check(frames, masks, first_frame)
    if mask_fill not in MASK_FILLS:
        raise InsertAnywhereError(f"Unknown mask fill '{mask_fill}'; use one of {MASK_FILLS}.")
    num, height, width = frames.shape[:3]
    masks = grow_masks(masks[:num], grow)
    first = resize_frames(first_frame[None], (height, width))[0]
    size = snap_size(height, width, multiple, max_side)
    video = resize_frames(np.concatenate([first[None], frames[1:]]), size)
    masks = resize_masks(masks, size)
    masks[0] = False
    if mask_fill == "gray":
        video = video.copy()
        video[masks] = GRAY
    total = padded_count(num)
    if total > num:
        video = np.concatenate([video, np.repeat(video[-1:], total - num, axis=0)])
        masks = np.concatenate([masks, np.repeat(masks[-1:], total - num, axis=0)])
    ref = pad_reference(reference, size) if reference is not None else None
    return VACEInputs(video, masks.astype(np.float32), ref, num, (height, width))


def restore(generated: np.ndarray, inputs: VACEInputs) -> np.ndarray:
    """Generated frames [N, h, w, 3] back to the input's count and size [F, H, W, 3]."""
    return resize_frames(generated[: inputs.num_frames], inputs.size)
