"""4D Reconstruct: from a video (and optional depth) to a SceneRecord.

  reconstruct(frames, *, depth=None, disparity=None, K=None, fov_deg=None, fps=16.0, progress=None, ...)
  preview_frames(scene) -> uint8 [F, H, 2W, 3]

Modules: inputs (checks), flow (DIS + forward-backward check; flow conventions), chain (PnP pose
chain), depth (per-frame depth models), bundle (bundle adjustment), motion (moving masks),
preview, evaluate (bench measurements).
"""

from .pipeline import reconstruct
from .preview import preview_frames

__all__ = ["reconstruct", "preview_frames"]
