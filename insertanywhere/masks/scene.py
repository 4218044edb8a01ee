"""The data records that flow between the mask-generation stages.

Shapes (F frames, H x W pixels):
  SceneRecord.frames             uint8   [F, H, W, 3]     RGB
  SceneRecord.depth              float32 [F, H, W]        camera z, one scale for all frames
  SceneRecord.K                  float32 [3, 3]           OpenCV pinhole intrinsics
  SceneRecord.camera_from_world  float32 [F, 4, 4]        frame 0 is the identity unless given
  SceneRecord.moving             bool    [F, H, W]        independently moving things
  SceneRecord.flow_fwd           float16 [F-1, H', W', 2] flow t -> t+1 in full-res pixels
  SceneRecord.flow_bwd           float16 [F-1, H', W', 2] flow t+1 -> t
  SceneRecord.flow_valid         bool    [F-1, H', W']    forward-backward consistent
  SceneRecord.lines              float32 [N, 5]           near-vertical segments (frame, x0, y0, x1, y1)
  (H', W' = flow grid; `flow_stride` full-res pixels per flow cell, 1 = full res)

  ObjectTrack.world_from_object  float32 [F, 4, 4]        similarity: canonical object -> world
  ObjectTrack.support_count      int64   [F]              support points tracked into each frame
  ObjectTrack.moving             bool    [F]              the support has left its frame-0 place
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InsertAnywhereError

SCENE_FORMAT_VERSION = 3  # 2: sharpened depth edges, vertical line segments; 3: poses named camera_from_world
SCENE_CONTENT_VERSION = 2  # what a record holds, for the cache key: a new file layout that still reads the
# old one (3 renamed an array) keeps it, so cached scenes stay hits
READABLE_VERSIONS = (2, 3)  # 2 stored the same poses as world_to_camera
TEMP_SUFFIX = ".tmp"  # SceneRecord.save writes `.<name>.<random>.tmp` first, then renames it
# Where the depth came from: a metric map, a relative disparity map, the video's motion alone, or not
# said (records made outside reconstruct(), e.g. a sample scene's ground truth). masks.vertical.use_upright
# decides on it.
DEPTH_SOURCES = ("metric", "disparity", "motion", "unknown")
INTRINSICS_SOURCES = ("given", "fov", "default_fov", "unknown")  # see reconstruct.inputs.intrinsics
# Typed fields stored in the record's info JSON beside the free provenance keys (formats 2 and 3 alike).
TYPED_INFO = ("depth_source", "intrinsics_source", "warnings", "timings", "cache_key")


@dataclass
class SceneRecord:
    frames: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    camera_from_world: np.ndarray
    moving: np.ndarray
    flow_fwd: Optional[np.ndarray] = None
    flow_bwd: Optional[np.ndarray] = None
    flow_valid: Optional[np.ndarray] = None
    flow_stride: int = 1
    fps: float = 16.0
    depth_source: str = "unknown"  # one of DEPTH_SOURCES
    intrinsics_source: str = "unknown"  # one of INTRINSICS_SOURCES
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per reconstruction step
    cache_key: Optional[str] = None  # the disk cache's key, set only on the copy it stores
    provenance: dict = field(default_factory=dict)  # how it was made (focal, flow preset, ...); nothing decides on it
    lines: Optional[np.ndarray] = None  # see masks.vertical; detected on use when None

    def __post_init__(self):
        self._check()

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)"""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    def save(self, path: str | Path) -> Path:
        """Cache the record as a compressed .npz (no pickle); returns the path written (".npz" added).

        Atomic: the arrays go to a temporary file in the same folder, which then replaces the
        final name in one step (os.replace), so a reader sees the old file, the new one or none,
        never a partial one, and a killed save leaves only a hidden `.<name>.*.tmp` behind.
        """
        path = Path(path)
        final = path if path.suffix == ".npz" else path.with_name(path.name + ".npz")
        arrays = {
            "frames": self.frames,
            "depth": self.depth.astype(np.float32),
            "K": self.K.astype(np.float32),
            "camera_from_world": self.camera_from_world.astype(np.float32),
            "moving": self.moving.astype(bool),
            "flow_stride": np.int32(self.flow_stride),
            "fps": np.float32(self.fps),
            "format_version": np.int32(SCENE_FORMAT_VERSION),
            "info_json": np.array(json.dumps(self._info())),
        }
        for name in ("flow_fwd", "flow_bwd", "flow_valid", "lines"):
            value = getattr(self, name)
            if value is not None:
                arrays[name] = value
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
        except OSError as exc:
            raise InsertAnywhereError(f"Cannot write scene record '{final}': {exc}. Check the folder.") from exc
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez_compressed(file, **arrays)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, final)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                raise InsertAnywhereError(f"Cannot write scene record '{final}': {exc}. Check free disk "
                                          "space and that the folder is writable.") from exc
            raise
        return final

    @classmethod
    def load(cls, path: str | Path) -> "SceneRecord":
        """Read a record written by `save`. Every array is read and checked here, so a truncated,
        bit-flipped, foreign or old-format file raises InsertAnywhereError, never a zip/numpy error
        later on."""
        path = Path(path)
        if not path.is_file():
            raise InsertAnywhereError(f"Scene record '{path}' does not exist; run 4D Reconstruct first.")
        try:
            with open(path, "rb") as file:
                head = file.read(4)
            if head != b"PK\x03\x04":  # np.load would take anything else for a pickle
                raise ValueError("the file is empty" if not head else f"not an .npz archive: it starts with {head!r}")
            with np.load(path, allow_pickle=False) as data:
                if "format_version" not in data.files:
                    raise ValueError(f"no format_version; it holds {sorted(data.files)[:8]}")
                version = int(data["format_version"])
                if version not in READABLE_VERSIONS:
                    raise _OldFormat(version)
                arrays = {name: data[name] for name in data.files}  # reads (and CRC-checks) every array now
            if version == 2:
                arrays["camera_from_world"] = arrays.pop("world_to_camera")
        except _OldFormat as old:
            raise InsertAnywhereError(
                f"Scene record '{path}' has format {old.args[0]}, this pack reads "
                f"{', '.join(map(str, READABLE_VERSIONS))}; "
                "recompute it."
            ) from None
        except MemoryError:
            raise
        except Exception as exc:  # zip / zlib / npy errors vary by numpy version and by the damage
            raise InsertAnywhereError(
                f"'{path}' is not a scene record saved by this pack, or it is damaged "
                f"({type(exc).__name__}: {exc}); recompute it."
            ) from exc
        try:
            record = cls(
                frames=arrays["frames"],
                depth=arrays["depth"],
                K=arrays["K"],
                camera_from_world=arrays["camera_from_world"],
                moving=arrays["moving"],
                flow_stride=int(arrays["flow_stride"]),
                fps=float(arrays["fps"]),
                **_typed_info(json.loads(str(arrays["info_json"]))),
                **{n: arrays[n] for n in ("flow_fwd", "flow_bwd", "flow_valid", "lines") if n in arrays},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InsertAnywhereError(
                f"'{path}' is not a complete scene record ({type(exc).__name__}: {exc}); recompute it."
            ) from exc
        return record

    def _check(self) -> None:
        """Shapes and dtypes as in the module doc; ValueError names the first that is off."""
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(f"SceneRecord.frames are {self.frames.dtype} {self.frames.shape}, not uint8 [F, H, W, 3]")
        F, H, W = self.frames.shape[:3]
        expected = {"depth": ((F, H, W), np.floating), "K": ((3, 3), np.floating),
                    "camera_from_world": ((F, 4, 4), np.floating), "moving": ((F, H, W), np.bool_)}
        for name, (shape, kind) in expected.items():
            value = getattr(self, name)
            if value.shape != shape or not np.issubdtype(value.dtype, kind):
                raise ValueError(f"SceneRecord.{name} is {value.dtype} {value.shape}, expected {shape}")
        flows = [getattr(self, n) for n in ("flow_fwd", "flow_bwd", "flow_valid")]
        if any(f is not None for f in flows):
            if any(f is None for f in flows):
                raise ValueError("SceneRecord has only part of the flow arrays (flow_fwd, flow_bwd, flow_valid)")
            fwd, bwd, valid = flows
            if fwd.ndim != 4 or fwd.shape[0] != F - 1 or fwd.shape[-1] != 2 or bwd.shape != fwd.shape \
                    or valid.shape != fwd.shape[:3]:
                raise ValueError(f"SceneRecord flow arrays {fwd.shape}, {bwd.shape}, {valid.shape} "
                                 f"do not fit {F} frames")
        if self.lines is not None and (self.lines.ndim != 2 or self.lines.shape[1] != 5):
            raise ValueError(f"SceneRecord.lines are {self.lines.shape}, expected [N, 5]")
        if self.flow_stride < 1 or not np.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"SceneRecord.flow_stride {self.flow_stride} / fps {self.fps} out of range")
        self._check_info()

    def _check_info(self) -> None:
        if self.depth_source not in DEPTH_SOURCES:
            raise ValueError(f"SceneRecord.depth_source is {self.depth_source!r:.40}, expected one of "
                             f"{DEPTH_SOURCES}")
        if self.intrinsics_source not in INTRINSICS_SOURCES:
            raise ValueError(f"SceneRecord.intrinsics_source is {self.intrinsics_source!r:.40}, expected one of "
                             f"{INTRINSICS_SOURCES}")
        if not isinstance(self.warnings, list) or not all(isinstance(w, str) for w in self.warnings):
            raise ValueError(f"SceneRecord.warnings must be a list of strings, got {self.warnings!r:.80}")
        if not isinstance(self.timings, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) for k, v in self.timings.items()):
            raise ValueError(f"SceneRecord.timings must map step names to seconds, got {self.timings!r:.80}")
        if self.cache_key is not None and not isinstance(self.cache_key, str):
            raise ValueError(f"SceneRecord.cache_key is {type(self.cache_key).__name__}, expected a string or None")
        if not isinstance(self.provenance, dict) or set(self.provenance) & set(TYPED_INFO):
            raise ValueError("SceneRecord.provenance must be a JSON object without the typed keys "
                             f"{TYPED_INFO}, got {self.provenance!r:.80}")

    def _info(self) -> dict:
        """The info JSON of a saved record: the provenance keys and the typed fields beside them."""
        typed = {"depth_source": self.depth_source, "intrinsics_source": self.intrinsics_source,
                 "warnings": self.warnings, "timings": self.timings}
        if self.cache_key is not None:
            typed["cache_key"] = self.cache_key
        return {**self.provenance, **typed}


def _typed_info(info) -> dict:
    """SceneRecord keyword arguments from a saved info JSON (formats 2 and 3 store it alike): the typed
    fields (absent ones keep their defaults) and the rest as provenance."""
    if not isinstance(info, dict):
        raise ValueError("info_json is not a JSON object")
    rest = dict(info)
    typed = {key: rest.pop(key) for key in TYPED_INFO if key in rest}
    return {**typed, "provenance": rest}


class _OldFormat(Exception):
    pass


@dataclass
class ObjectTrack:
    """Where the object is in every frame, plus what is needed to render it.

    support_count and moving default to zeros / False per frame (a track nothing followed)."""

    world_from_object: np.ndarray  # float [F, 4, 4]
    support_count: Optional[np.ndarray] = None  # int [F]: support points tracked into each frame
    moving: Optional[np.ndarray] = None  # bool [F]: the support has left its frame-0 place
    warnings: list[str] = field(default_factory=list)
    support: Optional[np.ndarray] = None  # [k, 3] scene points under the object, object coordinates

    def __post_init__(self):
        poses = np.asarray(self.world_from_object)
        if poses.ndim != 3 or poses.shape[1:] != (4, 4) or not np.issubdtype(poses.dtype, np.floating):
            raise ValueError(f"ObjectTrack.world_from_object is {poses.dtype} {poses.shape}, expected float [F, 4, 4]")
        num = len(poses)
        self.support_count = _per_frame(self.support_count, num, np.int64, "support_count")
        self.moving = _per_frame(self.moving, num, np.bool_, "moving")
        if not isinstance(self.warnings, list) or not all(isinstance(w, str) for w in self.warnings):
            raise ValueError(f"ObjectTrack.warnings must be a list of strings, got {self.warnings!r:.80}")
        if self.support is not None and (np.ndim(self.support) != 2 or np.shape(self.support)[1] != 3):
            raise ValueError(f"ObjectTrack.support is {np.shape(self.support)}, expected [k, 3]")


def _per_frame(values, num: int, dtype, name: str) -> np.ndarray:
    """`values` as a [num] array of `dtype` (zeros when None); ValueError naming `name` otherwise."""
    if values is None:
        return np.zeros(num, dtype)
    array = np.asarray(values)
    kind = np.integer if dtype is np.int64 else np.bool_
    if array.shape != (num,) or not np.issubdtype(array.dtype, kind):
        raise ValueError(f"ObjectTrack.{name} is {array.dtype} {array.shape}, expected {np.dtype(dtype).name} "
                         f"[{num}] (one per frame of world_from_object)")
    return array.astype(dtype, copy=False)
