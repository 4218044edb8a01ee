"""Preview of a reconstruction: colour-mapped depth beside the frame with its moving mask."""

from __future__ import annotations

import cv2
import numpy as np

from ..scene import SceneRecord

MOVING_TINT = np.array([255, 40, 40], np.float32)  # RGB


def depth_colours(depth: np.ndarray) -> np.ndarray:
    """float [F, H, W] camera depth -> uint8 [F, H, W, 3] RGB (near = bright/warm), one colour scale
    for the whole video: inverse depth between its 2nd and 98th percentiles."""
    inv = 1.0 / np.maximum(depth.astype(np.float32), 1e-6)
    sample = inv[:, ::4, ::4]
    lo, hi = np.percentile(sample, [2, 98])
    norm = np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1)
    grey = (norm * 255).astype(np.uint8)
    return np.stack([cv2.applyColorMap(g, cv2.COLORMAP_INFERNO)[..., ::-1] for g in grey])


def preview_frames(scene: SceneRecord) -> np.ndarray:
    """uint8 [F, H, 2W, 3] RGB: colour-mapped depth | frame with moving things tinted red and outlined."""
    colours = depth_colours(scene.depth)
    frames = scene.frames.astype(np.float32)
    moving = scene.moving[..., None]
    tinted = np.where(moving, 0.45 * frames + 0.55 * MOVING_TINT, frames).astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    for t in range(scene.num_frames):
        mask = scene.moving[t].astype(np.uint8)
        edge = cv2.dilate(mask, kernel) > cv2.erode(mask, kernel)
        tinted[t][edge] = (255, 255, 255)
    return np.concatenate([colours, tinted], axis=2)
