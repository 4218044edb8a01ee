"""Checking and normalising the inputs of 4D Reconstruct (frames, depth or disparity, intrinsics)."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
from scipy import ndimage

from ...errors import InsertAnywhereError

DEFAULT_FOV_DEG = 60.0
MAX_INVALID_FRACTION = 0.5


def as_frames(frames) -> np.ndarray:
    """Video -> uint8 [F, H, W, 3] RGB. Accepts uint8, or float in 0..1 (a ComfyUI IMAGE batch)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InsertAnywhereError(
            f"Frames must have shape [F, H, W, 3] (RGB video); got {tuple(frames.shape)}. "
            "Pass the decoded video as one batch of RGB frames.")
    if frames.shape[0] < 2:
        raise InsertAnywhereError(
            f"4D Reconstruct needs a video of at least 2 frames; got {frames.shape[0]}. "
            "Load more frames of the video.")
    if frames.shape[1] < 16 or frames.shape[2] < 16:
        raise InsertAnywhereError(f"Frames of {frames.shape[2]}x{frames.shape[1]} pixels are too small; "
                                  "use a video of at least 16x16 pixels.")
    if frames.dtype != np.uint8:
        values = frames.astype(np.float32)
        if not np.isfinite(values).all():
            raise InsertAnywhereError("Frames contain NaN or inf values; decode the video again.")
        scale = 255.0 if values.max() <= 1.0 + 1e-6 else 1.0
        frames = np.clip(values * scale + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(frames)


def intrinsics(height: int, width: int, K=None, fov_deg: Optional[float] = None) -> tuple[np.ndarray, str]:
    """K float64 [3, 3] and where it came from ('given', 'fov', 'default_fov').

    Without K the focal follows from the horizontal field of view (default 60 degrees), square
    pixels, principal point at the image centre ((W - 1) / 2, (H - 1) / 2).
    """
    if K is not None:
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise InsertAnywhereError(
                f"Intrinsics K must be a finite 3x3 matrix with positive focal lengths; got {K.tolist()}. "
                "Pass [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels, or leave K empty to use a field of view.")
        return K, "given"
    source = "default_fov" if fov_deg is None else "fov"
    fov = DEFAULT_FOV_DEG if fov_deg is None else float(fov_deg)
    if not np.isfinite(fov) or not 5.0 <= fov <= 170.0:
        raise InsertAnywhereError(f"Field of view {fov_deg} degrees is out of range; use 5..170 (horizontal).")
    f = 0.5 * width / np.tan(np.radians(fov) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], np.float64), source


def _as_maps(values, name: str, num_frames: int, height: int, width: int) -> np.ndarray:
    """[F, h, w] or [F, h, w, C] (a ComfyUI IMAGE: channels averaged) -> float32 [F, H, W]."""
    maps = np.asarray(values, dtype=np.float32)
    if maps.ndim == 4 and maps.shape[-1] in (1, 3, 4):
        maps = maps[..., :3].mean(axis=-1) if maps.shape[-1] > 1 else maps[..., 0]
    if maps.ndim == 2 and num_frames == 1:
        maps = maps[None]
    if maps.ndim != 3:
        raise InsertAnywhereError(
            f"{name} must have shape [F, h, w] (or an IMAGE batch [F, h, w, C]); got {tuple(maps.shape)}. "
            f"Pass one {name} map per video frame.")
    if maps.shape[0] != num_frames:
        raise InsertAnywhereError(
            f"{name} has {maps.shape[0]} frames but the video has {num_frames}; "
            f"compute the {name} on exactly the frames you pass.")
    h, w = maps.shape[1:]
    if abs(np.log((w / h) / (width / height))) > 0.03:
        raise InsertAnywhereError(
            f"{name} maps are {w}x{h} but the frames are {width}x{height} (a different aspect ratio); "
            f"compute the {name} on the same frames (any resolution with the same aspect ratio).")
    if (h, w) != (height, width):
        maps = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in maps])
    return maps


def _fill_invalid(maps: np.ndarray, invalid: np.ndarray, name: str, warnings: list[str]) -> np.ndarray:
    """Replace invalid pixels by the nearest valid value; too many invalid pixels is an error."""
    fraction = invalid.reshape(len(maps), -1).mean(axis=1)
    worst = int(np.argmax(fraction))
    if fraction[worst] > MAX_INVALID_FRACTION:
        raise InsertAnywhereError(
            f"{name} of frame {worst} is {fraction[worst]:.0%} invalid (NaN, inf, or not positive); "
            f"at most {MAX_INVALID_FRACTION:.0%} may be. Check the {name} source or drop that input.")
    if fraction.max() == 0:
        return maps
    maps = maps.copy()
    for t in np.flatnonzero(fraction > 0):
        _, (iy, ix) = ndimage.distance_transform_edt(invalid[t], return_indices=True)
        maps[t] = maps[t][iy, ix]
    warnings.append(f"{name}: filled {int(invalid.sum())} invalid pixels in {int((fraction > 0).sum())} "
                    "frames from their nearest valid neighbours")
    return maps


def prepare_depth(depth, num_frames: int, height: int, width: int, warnings: list[str]) -> np.ndarray:
    """Metric depth (camera z) -> float32 [F, H, W] > 0; NaN / inf / <= 0 pixels filled or refused."""
    maps = _as_maps(depth, "depth", num_frames, height, width)
    maps = _fill_invalid(maps, ~np.isfinite(maps) | (maps <= 0), "depth", warnings)
    return maps


def prepare_disparity(disparity, num_frames: int, height: int, width: int, warnings: list[str]) -> np.ndarray:
    """Relative inverse depth (any per-frame affine; larger = nearer) -> float32 [F, H, W].

    Each frame is normalised to 0..1 (the affine alignment later undoes any per-frame affine).
    A frame without any variation carries no depth and is refused.
    """
    maps = _as_maps(disparity, "disparity", num_frames, height, width)
    maps = _fill_invalid(maps, ~np.isfinite(maps), "disparity", warnings)
    flat = maps[:, ::4, ::4].reshape(num_frames, -1)
    lo = np.percentile(flat, 0.5, axis=1)
    hi = np.percentile(flat, 99.5, axis=1)
    flat_frames = np.flatnonzero(hi - lo <= 1e-6 * np.maximum(np.abs(hi), 1.0))
    if len(flat_frames):
        raise InsertAnywhereError(
            f"disparity of frame {int(flat_frames[0])} is constant, so it carries no depth; "
            "check the depth node's output (it should vary across the image) or leave the input empty.")
    scale = (1.0 / (hi - lo)).astype(np.float32)[:, None, None]
    return (maps - lo.astype(np.float32)[:, None, None]) * scale  # a new array: the input stays untouched
