"""The sampling knobs of the insertion stages, in checked objects (as pycolmap does its option objects).

  frames = insert_object(model, frames, masks, first_frame, None, "a red mug", options=VACEOptions(steps=20))
  first = kontext_inpaint(pipe, scene, mask, reference, "a red mug", KontextOptions(seed=3))

Each field's error names it and its valid range (insertanywhere.options).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..options import bad, check_choice, check_flag, check_integer, check_number, is_int
from .conditioning import MASK_FILLS
from .wan import SCHEDULERS

MAX_SEED = 2**64 - 1  # the nodes' seed widget goes up to 0xFFFFFFFFFFFFFFFF; torch seeds take 64 bits
MIN_WINDOW = 5  # frames: Wan samples 4k+1 frames, and one latent frame past the first is the least
KONTEXT_RESOLUTIONS = ("preferred", "input")


@dataclass(frozen=True)
class VACEOptions:
    """How insert_object samples Wan VACE; the defaults are Wan's own (480p).

    seed: int 0..2**64-1. Noise seed of the first window (window i uses seed + i).
    steps: int >= 1. Denoising steps per window.
    cfg: float >= 0. Classifier-free guidance scale; 1 or less turns it off (no negative prompt pass).
    shift: float >= 0. Flow shift of the schedule: 3 for 480p, 5 for 720p.
    scheduler: "unipc" | "euler" | "dpm++". Sampler of the flow schedule.
    conditioning_scale: float >= 0. Strength of the VACE control.
    mask_fill: "gray" | "keep". Masked pixels of later frames grey (VACE's 'generate here') or the scene's.
    grow: int >= 0, pixels. The masks are dilated by this much (room for shadows and contact).
    max_side: int >= 0, pixels. Work at most this large (longer side); 0 keeps the video's size.
    window: int 4k+1 >= 5, frames. Longer videos are sampled in windows of this many frames.
    overlap: int >= 1, frames each window takes over from the previous one (at most window - 4,
      checked when the video is split: long_video.plan_windows).
    colour_lock: bool. Match each window's colours to the previous one's.
    """

    seed: int = 0
    steps: int = 30
    cfg: float = 5.0
    shift: float = 3.0
    scheduler: str = "unipc"
    conditioning_scale: float = 1.0
    mask_fill: str = "gray"
    grow: int = 0
    max_side: int = 0
    window: int = 81
    overlap: int = 9
    colour_lock: bool = True

    def __post_init__(self):
        owner = "VACEOptions"
        check_integer(owner, "seed", self.seed, 0, MAX_SEED)
        check_integer(owner, "steps", self.steps, 1)
        for name in ("cfg", "shift", "conditioning_scale"):
            check_number(owner, name, getattr(self, name), positive=False)
        check_choice(owner, "scheduler", self.scheduler, SCHEDULERS)
        check_choice(owner, "mask_fill", self.mask_fill, MASK_FILLS)
        check_integer(owner, "grow", self.grow, 0)
        check_integer(owner, "max_side", self.max_side, 0, extra="(0 keeps the video's size)")
        if not is_int(self.window) or self.window < MIN_WINDOW or (self.window - 1) % 4:
            raise bad(owner, "window", self.window, f"an integer 4k+1 >= {MIN_WINDOW} (5, 9, ..., 81)")
        check_integer(owner, "overlap", self.overlap, 1)
        check_flag(owner, "colour_lock", self.colour_lock)


@dataclass(frozen=True)
class KontextOptions:
    """How kontext_inpaint runs Flux Kontext on frame 0; the defaults are FLUX.1-Kontext-dev's.

    steps: int >= 1. Denoising steps.
    guidance: float >= 0. Guidance scale (distilled guidance: no negative pass).
    strength: float in (0, 1]. How much of the masked region is re-noised; 1 = all of it.
    seed: int 0..2**64-1. Noise seed.
    resolution: "preferred" | "input". Kontext's trained resolution (best quality) or the frame's
      size (snapped to 16).
    grow: int >= 0, pixels. The mask is dilated by this much before inpainting and pasting back.
    feather: int >= 0, pixels. The paste-back alpha falls to 0 over this many pixels outside it.
    """

    steps: int = 28
    guidance: float = 2.5
    strength: float = 1.0
    seed: int = 0
    resolution: str = "preferred"
    grow: int = 8
    feather: int = 6

    def __post_init__(self):
        owner = "KontextOptions"
        check_integer(owner, "steps", self.steps, 1)
        check_number(owner, "guidance", self.guidance, positive=False)
        check_number(owner, "strength", self.strength, positive=True, high=1.0)
        check_integer(owner, "seed", self.seed, 0, MAX_SEED)
        check_choice(owner, "resolution", self.resolution, KONTEXT_RESOLUTIONS)
        check_integer(owner, "grow", self.grow, 0)
        check_integer(owner, "feather", self.feather, 0)
