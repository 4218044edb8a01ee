"""Small synthetic videos for the generative-half tests (a textured scene with a box-shaped object
mask that moves), importable by the test modules and conftest.py."""

from __future__ import annotations

import numpy as np

FRAMES, HEIGHT, WIDTH = 9, 32, 48


def scene_video(frames: int = FRAMES, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    """uint8 [F, H, W, 3]: a smooth gradient with mild noise, panning one pixel per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, : width + frames]
    base = np.stack([80 + 100 * xx / (width + frames), 120 + 60 * yy / height, 90 + 0 * xx], axis=-1)
    base = base + rng.normal(0, 4, base.shape)
    return np.stack([base[:, i:i + width] for i in range(frames)]).clip(0, 255).astype(np.uint8)


def box_masks(frames: int = FRAMES, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """bool [F, H, W]: a 12x16 box moving right by one pixel per frame."""
    masks = np.zeros((frames, height, width), bool)
    for i in range(frames):
        masks[i, 10:22, 12 + i:28 + i] = True
    return masks
