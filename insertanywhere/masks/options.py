"""The knobs of the mask stages after decoding, in one checked object (as pycolmap does its option objects).

  result = run_masks(video, placement, out, object_mesh=mesh, options=MaskOptions(occlusion=False))
  camera_only = masks_from_scene(scene, obj, placement, MaskOptions(occlusion=False, propagation=False))

The frame selection is memory.Selection; the reconstruction's knobs are ReconstructOptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..options import check_choice, check_flag, check_integer
from .object3d import MAX_FACES, check_max_faces
from .reproject import MAX_SPLAT_RADIUS
from .vertical import UPRIGHT_MODES

OWNER = "MaskOptions"


@dataclass(frozen=True)
class MaskOptions:
    """How the object is loaded, placed, propagated and reprojected; the defaults suit any clip.

    occlusion: bool. False ignores the scene's depth in the z-test (ablation: the visible mask is the amodal one).
    propagation: bool. False keeps the frame-0 world pose in every frame (ablation: no moving support).
    splat_px: int 0..MAX_SPLAT_RADIUS (8) or None, pixels. Splat radius of a point-cloud object;
      None: from the points' spacing on screen.
    upright: "auto" | "on" | "off". The object's up on level surfaces from the scene's vertical lines
      (on), from the depth normal (off), or auto: lines unless the depth is metric and K was given.
    max_faces: int >= object3d.MIN_FACES (100), triangles. A mesh with more is simplified on load.
    """

    occlusion: bool = True
    propagation: bool = True
    splat_px: Optional[int] = None
    upright: str = "auto"
    max_faces: int = MAX_FACES

    def __post_init__(self):
        check_flag(OWNER, "occlusion", self.occlusion)
        check_flag(OWNER, "propagation", self.propagation)
        if self.splat_px is not None:
            check_integer(OWNER, "splat_px", self.splat_px, 0, MAX_SPLAT_RADIUS, "or None (from the point spacing)")
        check_choice(OWNER, "upright", self.upright, UPRIGHT_MODES)
        check_max_faces(self.max_faces)  # its message, as the CLI's --max-faces has always given


CAMERA_ONLY = MaskOptions(occlusion=False, propagation=False)  # the ablation: camera motion alone moves the object
