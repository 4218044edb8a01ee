"""The data records that flow between the mask-generation stages.

Shapes (F frames, H x W pixels):
  SceneRecord.frames          uint8   [F, H, W, 3]   RGB
  SceneRecord.depth           float32 [F, H, W]      camera z, one scale for all frames
  SceneRecord.K               float32 [3, 3]         OpenCV pinhole intrinsics
  SceneRecord.world_to_camera float32 [F, 4, 4]      frame 0 is the identity unless given
  SceneRecord.moving          bool    [F, H, W]      independently moving things
  SceneRecord.flow_fwd        float16 [F-1, H', W', 2] flow t -> t+1 in full-res pixels
  SceneRecord.flow_bwd        float16 [F-1, H', W', 2] flow t+1 -> t
  SceneRecord.flow_valid      bool    [F-1, H', W']  forward-backward consistent
  SceneRecord.lines           float32 [N, 5]         near-vertical segments (frame, x0, y0, x1, y1)
  (H', W' = flow grid; `flow_stride` full-res pixels per flow cell, 1 = full res)

  ObjectTrack.world_from_object float32 [F, 4, 4]  similarity: canonical object -> world
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InsertAnywhereError

SCENE_FORMAT_VERSION = 2  # 2: sharpened depth edges, vertical line segments


@dataclass
class SceneRecord:
    frames: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    world_to_camera: np.ndarray
    moving: np.ndarray
    flow_fwd: Optional[np.ndarray] = None
    flow_bwd: Optional[np.ndarray] = None
    flow_valid: Optional[np.ndarray] = None
    flow_stride: int = 1
    fps: float = 16.0
    info: dict = field(default_factory=dict)  # how it was made: depth source, timings, warnings
    lines: Optional[np.ndarray] = None  # see masks.vertical; detected on first use when None

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)"""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    def save(self, path: str | Path) -> Path:
        """Cache the record as a compressed .npz (no pickle)."""
        path = Path(path)
        arrays = {
            "frames": self.frames,
            "depth": self.depth.astype(np.float32),
            "K": self.K.astype(np.float32),
            "world_to_camera": self.world_to_camera.astype(np.float32),
            "moving": self.moving.astype(bool),
            "flow_stride": np.int32(self.flow_stride),
            "fps": np.float32(self.fps),
            "format_version": np.int32(SCENE_FORMAT_VERSION),
            "info_json": np.array(json.dumps(self.info)),
        }
        for name in ("flow_fwd", "flow_bwd", "flow_valid", "lines"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> "SceneRecord":
        path = Path(path)
        if not path.is_file():
            raise InsertAnywhereError(f"Scene record '{path}' does not exist; run 4D Reconstruct first.")
        try:
            data = np.load(path, allow_pickle=False)
            version = int(data["format_version"])
        except Exception as exc:  # zip/npz errors vary by numpy version
            raise InsertAnywhereError(f"'{path}' is not a scene record saved by this pack ({exc}).") from exc
        if version != SCENE_FORMAT_VERSION:
            raise InsertAnywhereError(
                f"Scene record '{path}' has format {version}, this pack reads {SCENE_FORMAT_VERSION}; recompute it."
            )
        optional = {n: data[n] for n in ("flow_fwd", "flow_bwd", "flow_valid", "lines") if n in data}
        return cls(
            frames=data["frames"],
            depth=data["depth"],
            K=data["K"],
            world_to_camera=data["world_to_camera"],
            moving=data["moving"],
            flow_stride=int(data["flow_stride"]),
            fps=float(data["fps"]),
            info=json.loads(str(data["info_json"])),
            **optional,
        )


@dataclass
class ObjectTrack:
    """Where the object is in every frame, plus what is needed to render it."""

    world_from_object: np.ndarray  # [F, 4, 4]
    info: dict = field(default_factory=dict)
    support: Optional[np.ndarray] = None  # [k, 3] scene points under the object, object coordinates
