"""4D Reconstruct: from a video (and optional depth) to a SceneRecord.

  reconstruct(frames, *, depth=None, disparity=None, K=None, fov_deg=None, fps=16.0, progress=None,
              options=ReconstructOptions(...))
  preview_frames(scene) -> uint8 [F, H, 2W, 3]

Modules: options (ReconstructOptions, the tuning knobs), inputs (checks), flow (DIS +
forward-backward check; flow conventions), chain (PnP pose chain), depth (per-frame depth models),
bundle (bundle adjustment), motion (moving masks), preview, evaluate (bench measurements), spill
(the float32 flow on disk while the passes run).
"""

from .options import ReconstructOptions
from .pipeline import reconstruct
from .preview import preview_frames

# Part of every disk-cache key (masks.scene_cache): bump it when a change to the reconstruction
# changes its results, so scenes cached by the old code are recomputed rather than reused.
RECONSTRUCT_VERSION = 1

__all__ = ["reconstruct", "ReconstructOptions", "preview_frames", "RECONSTRUCT_VERSION"]
