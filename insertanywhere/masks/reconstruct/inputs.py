"""Checking and normalising the inputs of 4D Reconstruct (frames, depth or disparity, intrinsics)."""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np
from scipy import ndimage

from ...errors import InsertAnywhereError
from ..intrinsics import check_intrinsics, check_intrinsics_for_frame

DEFAULT_FOV_DEG = 60.0
MAX_INVALID_FRACTION = 0.5
# A depth / disparity frame whose values (0.5th..99.5th percentile) span less than this fraction of
# their magnitude has no usable structure: any scene with a surface to stand an object on spans far
# more (a floor seen at 30 degrees spans a factor of 2 or more), while 1 % of an 8-bit depth image
# spanning 0..1 is 2.5 grey levels. Constant metric depth passed before and gave masks with IoU 0.10.
# (Pure noise with a larger spread is not detected: that would need a test of spatial structure.)
MIN_RELATIVE_SPREAD = 0.01


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
        K = check_intrinsics(K, "Intrinsics K")
        check_intrinsics_for_frame(K, height, width, "Intrinsics K")
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


VALID_MAP = {
    "depth": "a valid 'depth' map is finite camera z > 0 (metres or any one unit) per pixel, [frames, H, W], "
             "varying with the scene",
    "disparity": "a valid 'disparity' map is finite relative inverse depth (larger = nearer) per pixel, "
                 "[frames, H, W], varying with the scene",
}


def check_maps(maps: np.ndarray, name: str, where: str = "the depth input") -> None:
    """Refuse a depth or disparity stack [F, H, W] that cannot carry a scene.

    A frame is refused when more than MAX_INVALID_FRACTION of it is NaN / inf (or, for metric
    depth, not positive), or when it is (nearly) constant: its valid values, 0.5th to 99.5th
    percentile, span less than MIN_RELATIVE_SPREAD of their magnitude (see that constant).
    """
    maps = np.asarray(maps)
    grid = maps[:, ::4, ::4] if maps.ndim == 3 else maps
    with np.errstate(invalid="ignore"):
        invalid = ~np.isfinite(grid) | ((grid <= 0) if name == "depth" else False)
    fraction = invalid.reshape(len(grid), -1).mean(axis=1)
    worst = int(np.argmax(fraction))
    if fraction[worst] > MAX_INVALID_FRACTION:
        hint = (" If these values are disparities (larger = nearer) save them under key 'disparity'."
                if name == "depth" and np.isfinite(grid[worst]).mean() > MAX_INVALID_FRACTION else "")
        raise InsertAnywhereError(
            f"{name} of frame {worst} in {where} is {fraction[worst]:.0%} invalid (NaN, inf"
            f"{', or not positive' if name == 'depth' else ''}); at most {MAX_INVALID_FRACTION:.0%} may be: "
            f"{VALID_MAP[name]}.{hint}")
    for t in range(len(grid)):
        values = grid[t][~invalid[t]].astype(np.float64)
        lo, hi = np.percentile(values, [0.5, 99.5])
        scale = max(abs(lo), abs(hi))
        if hi - lo <= MIN_RELATIVE_SPREAD * scale or scale == 0:
            raise InsertAnywhereError(
                f"{name} of frame {t} in {where} is (nearly) constant ({lo:.4g} to {hi:.4g}, a spread under "
                f"{MIN_RELATIVE_SPREAD:.0%}), so it carries no depth: {VALID_MAP[name]}. Check the depth source, "
                "or leave the depth input out (the video alone is then used).")


def _fill_invalid(maps: np.ndarray, invalid: np.ndarray, name: str, warnings: list[str]) -> np.ndarray:
    """Replace invalid pixels by the nearest valid value (check_maps refused frames with too many)."""
    fraction = invalid.reshape(len(maps), -1).mean(axis=1)
    worst = int(np.argmax(fraction))
    if fraction[worst] > MAX_INVALID_FRACTION:
        raise InsertAnywhereError(
            f"{name} of frame {worst} is {fraction[worst]:.0%} invalid (NaN, inf, or not positive); "
            f"at most {MAX_INVALID_FRACTION:.0%} may be: {VALID_MAP[name]}.")
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
    check_maps(maps, "depth")
    maps = _fill_invalid(maps, ~np.isfinite(maps) | (maps <= 0), "depth", warnings)
    return maps


def prepare_disparity(disparity, num_frames: int, height: int, width: int, warnings: list[str]) -> np.ndarray:
    """Relative inverse depth (any per-frame affine; larger = nearer) -> float32 [F, H, W].

    Each frame is normalised to 0..1 (the affine alignment later undoes any per-frame affine).
    A frame without any variation carries no depth and is refused.
    """
    maps = _as_maps(disparity, "disparity", num_frames, height, width)
    check_maps(maps, "disparity")
    maps = _fill_invalid(maps, ~np.isfinite(maps), "disparity", warnings)
    flat = maps[:, ::4, ::4].reshape(num_frames, -1)
    lo = np.percentile(flat, 0.5, axis=1)
    hi = np.percentile(flat, 99.5, axis=1)
    scale = (1.0 / (hi - lo)).astype(np.float32)[:, None, None]
    return (maps - lo.astype(np.float32)[:, None, None]) * scale  # a new array: the input stays untouched
