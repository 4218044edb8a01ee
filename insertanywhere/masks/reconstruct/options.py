"""The tuning knobs of reconstruct(), in one checked object (as pycolmap does its option objects).

  options = ReconstructOptions(flow_preset="fast", seed=3)
  scene = reconstruct(frames, disparity=d, options=options)

Every field is part of the disk-cache key (masks.scene_cache reads dataclasses.asdict), so a new
field changes results only through a new key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...options import bad, check_flag, check_integer, check_number, is_int
from .flow import PRESETS

MAX_FLOW_STRIDE = 64  # px per flow cell: beyond this a 4K frame keeps under 64 cells across, too few for PnP
MAX_BA_GAP = 1000  # frames: pairs farther apart share no flow chain worth matching
MIN_BA_POINTS = 8  # correspondences per frame pair: build_pairs drops a pair with fewer than 8
OWNER = "ReconstructOptions"
MAX_SHARPEN_PX = 64  # px: ramps wider than this are real slopes, not a network's blur


@dataclass(frozen=True)
class ReconstructOptions:
    """How reconstruct() works; the defaults suit any clip.

    flow_stride: int >= 1 or None. Full-res pixels per flow-grid cell (the flow, the moving-mask
      evidence and the correspondences live on that grid). None: the smallest power of two that
      keeps the long side at most 512 cells.
    flow_preset: "ultrafast" | "fast" | "medium". OpenCV DIS optical-flow preset (slower = finer).
    refine_focal: bool or None. Refine the focal length from the video in the last bundle
      adjustment; None: only when K was not given.
    ba_gaps: tuple of ints >= 1, frames. Bundle adjustment matches frame i with i + g for each g.
    ba_points: int >= 8. Correspondences per frame pair in the bundle adjustment.
    ba_iterations: int >= 1. Levenberg-Marquardt iterations of the first bundle adjustment (the
      later passes run half as many, at least one).
    depth_weight: float > 0. Weight of the depth agreement residual (log depth ratio) against the
      reprojection residual (pixels); 3 makes a 1/3 depth error cost as much as one pixel.
    motion_tolerance_px: float > 0, full-res pixels. Flow that the camera motion misses by less is
      not motion (widened to the fit's own residuals).
    motion_relative: float >= 0, a fraction of the camera-translation parallax added to that
      tolerance (absorbs depth errors, whose effect grows with parallax).
    refine_depth: bool or None. Correct each frame's depth with a smooth field fitted to
      multi-view triangulation; None: for disparity input only.
    polish: bool. After that correction, adjust the cameras once more to the corrected depth.
    sharpen_px: int 0..64 or None, full-res pixels. Half-width of the blurred depth ramps snapped
      to steps (reconstruct.edges); None: by frame size; 0: off.
    seed: int >= 0. Seeds every random draw (point sampling, OpenCV's robust estimators): the same
      input and seed give the same scene.
    """

    flow_stride: Optional[int] = None
    flow_preset: str = "medium"
    refine_focal: Optional[bool] = None
    ba_gaps: tuple[int, ...] = (1, 2, 4, 8)
    ba_points: int = 96
    ba_iterations: int = 20
    depth_weight: float = 3.0
    motion_tolerance_px: float = 0.75
    motion_relative: float = 0.03
    refine_depth: Optional[bool] = None
    polish: bool = True
    sharpen_px: Optional[int] = None
    seed: int = 0

    def __post_init__(self):
        if self.flow_stride is not None:
            check_integer(OWNER, "flow_stride", self.flow_stride, 1, MAX_FLOW_STRIDE, "or None (by frame size)")
        if self.flow_preset not in PRESETS:
            raise bad(OWNER, "flow_preset", self.flow_preset, f"one of {', '.join(sorted(PRESETS))}")
        for name in ("refine_focal", "refine_depth"):
            check_flag(OWNER, name, getattr(self, name), allow_none=True)
        check_flag(OWNER, "polish", self.polish)
        object.__setattr__(self, "ba_gaps", _gaps(self.ba_gaps))
        check_integer(OWNER, "ba_points", self.ba_points, MIN_BA_POINTS)
        check_integer(OWNER, "ba_iterations", self.ba_iterations, 1)
        check_number(OWNER, "depth_weight", self.depth_weight, positive=True)
        check_number(OWNER, "motion_tolerance_px", self.motion_tolerance_px, positive=True)
        check_number(OWNER, "motion_relative", self.motion_relative, positive=False)
        if self.sharpen_px is not None:
            check_integer(OWNER, "sharpen_px", self.sharpen_px, 0, MAX_SHARPEN_PX, "or None (by frame size)")
        check_integer(OWNER, "seed", self.seed, 0)


def _gaps(value) -> tuple[int, ...]:
    valid = f"a non-empty tuple of integers from 1 to {MAX_BA_GAP} (frames), e.g. (1, 2, 4, 8)"
    try:
        gaps = tuple(value)
    except TypeError:
        raise bad(OWNER, "ba_gaps", value, valid) from None
    if not gaps or not all(is_int(g) and 1 <= g <= MAX_BA_GAP for g in gaps):
        raise bad(OWNER, "ba_gaps", value, valid)
    return gaps
