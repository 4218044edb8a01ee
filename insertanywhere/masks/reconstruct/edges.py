"""Sharp depth edges: depth networks blur a step between a near thing and the far scene into a ramp.

Ramps matter for occlusion: the z-test puts an occluder's edge where the ramp crosses the object's
depth, which is a pixel or two off the true edge on the far side (an object just behind an
occluder shows through its blurred rim). Here each pixel on a discontinuity (the nearest and
farthest depth within `radius` differ by more than `ratio`) takes the nearer or the farther of
the two, whichever its inverse depth is closer to: the ramp becomes a step at its middle, where
the true edge is for a symmetric blur. Smooth surfaces are left alone, sharp depth is unchanged.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .threads import stack_frames

EDGE_RATIO = 1.1            # nearest / farthest depth ratio that marks a discontinuity
PIXELS_PER_RADIUS = 256     # auto radius: one pixel of ramp per this many pixels of the long side
MAX_AUTO_RADIUS = 4


def auto_radius(height: int, width: int) -> int:
    """Half-width (px) of the ramps a depth network leaves at this frame size."""
    return int(np.clip(round(max(height, width) / PIXELS_PER_RADIUS), 1, MAX_AUTO_RADIUS))


def sharpen_edges(depth: np.ndarray, radius: Optional[int] = None, ratio: float = EDGE_RATIO,
                  out: Optional[np.ndarray] = None) -> np.ndarray:
    """depth float [F, H, W] (> 0) -> the same with discontinuities snapped to steps, float32.

    radius: half-width of the ramps in px (None: auto_radius); 0 returns the input unchanged.
    out: float32 [F, H, W] to write into (it may be depth itself: each frame reads only its own).
    """
    depth = np.asarray(depth, np.float32)
    if radius is None:
        radius = auto_radius(*depth.shape[1:])
    if radius <= 0:
        return depth
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))

    def sharpen(t: int) -> np.ndarray:
        inverse = 1.0 / depth[t]
        near = cv2.dilate(inverse, kernel)
        far = cv2.erode(inverse, kernel)
        step = np.where(inverse >= 0.5 * (near + far), near, far)
        return np.where(near > ratio * far, 1.0 / step, depth[t])

    return stack_frames(sharpen, len(depth), np.float32, out=out)
