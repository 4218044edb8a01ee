"""Checks on a given camera matrix K, so a bad K is one clear error instead of a wrong result.

The pipeline uses a pinhole camera K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels with
square pixels (one focal length; reconstruct.bundle). What is refused and why:
  - not 3x3, not finite, or not of that form (a non-zero lower row or skew): the projection is
    then not the one the pipeline computes; a last row other than [0, 0, 1] made K singular and
    gave a pile of "camera pose not found" warnings instead of a message.
  - fx, fy not positive, or differing by more than MAX_ASPECT_DIFF (2 %): the reconstruction
    keeps fx for both, which would silently stretch the scene; 2 % covers calibration noise.
  - a principal point (cx, cy) outside the image [0, W-1] x [0, H-1]: every ray is then bent
    to one side (a K made for another resolution or crop); it gave masks with IoU 0.17.
  - a field of view outside MIN_FOV_DEG..MAX_FOV_DEG (1..170 degrees) along either axis:
    under 1 degree is a longer lens than any camera that films a scene to insert into (fx = 1e12
    passed silently before), and a pinhole image cannot reach 180 degrees (170 is already a
    fisheye, which this pinhole model does not describe).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InsertAnywhereError

FORM = "[[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels"
MAX_ASPECT_DIFF = 0.02
MAX_SKEW = 1e-3          # |K[0, 1]| relative to fx that still counts as zero (rounding of a calibration)
MIN_FOV_DEG, MAX_FOV_DEG = 1.0, 170.0


def check_intrinsics(K, where: str = "The intrinsics") -> np.ndarray:
    """K as float64 [3, 3] if it has the pinhole form with square pixels; else InsertAnywhereError."""
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InsertAnywhereError(f"{where} are not a 3x3 matrix of numbers ({exc}); give {FORM}.") from exc
    if K.shape != (3, 3) or not np.isfinite(K).all():
        shown = K.tolist() if K.size <= 16 else f"an array of shape {K.shape}"
        raise InsertAnywhereError(f"{where} must be a finite 3x3 matrix {FORM}; got {shown}.")
    fx, fy = K[0, 0], K[1, 1]
    if fx <= 0 or fy <= 0:
        raise InsertAnywhereError(f"{where} need positive fx and fy; got fx = {fx:g}, fy = {fy:g} ({FORM}).")
    if not np.allclose(K[2], [0.0, 0.0, 1.0], rtol=0, atol=1e-9) or abs(K[1, 0]) > 1e-9:
        raise InsertAnywhereError(
            f"{where} are not of the form {FORM}: the last row is {K[2].tolist()} and K[1][0] = {K[1, 0]:g} "
            "(a singular or transposed matrix?). Write the last row as [0, 0, 1] and the focal lengths on the "
            "diagonal.")
    if abs(K[0, 1]) > MAX_SKEW * fx:
        raise InsertAnywhereError(
            f"{where} have a skew K[0][1] = {K[0, 1]:g}; the pipeline assumes none ({FORM}). Set it to 0.")
    if abs(fx - fy) > MAX_ASPECT_DIFF * max(fx, fy):
        raise InsertAnywhereError(
            f"{where} have fx = {fx:g} and fy = {fy:g}, {abs(fx - fy) / max(fx, fy):.0%} apart; the reconstruction "
            f"assumes square pixels (fx = fy within {MAX_ASPECT_DIFF:.0%}). Resample the video to square pixels "
            "or give fx = fy.")
    return K


def check_intrinsics_for_frame(K: np.ndarray, height: int, width: int, where: str = "The intrinsics") -> None:
    """Raise unless K's principal point lies inside a width x height frame and its field of view is plausible."""
    cx, cy = float(K[0, 2]), float(K[1, 2])
    if not (0.0 <= cx <= width - 1 and 0.0 <= cy <= height - 1):
        raise InsertAnywhereError(
            f"{where} put the principal point at ({cx:g}, {cy:g}), outside the {width}x{height} frames; it must "
            f"lie inside the image (near its centre, ({(width - 1) / 2:g}, {(height - 1) / 2:g})). Was K made for "
            "another resolution or crop? Scale fx, fy, cx, cy by the resize factor.")
    for axis, focal, size in (("horizontal", float(K[0, 0]), width), ("vertical", float(K[1, 1]), height)):
        fov = math.degrees(2 * math.atan(size / (2 * focal)))
        if not MIN_FOV_DEG <= fov <= MAX_FOV_DEG:
            raise InsertAnywhereError(
                f"{where} give a {axis} field of view of {fov:.3g} degrees (focal {focal:g} px over {size} px); "
                f"it must be {MIN_FOV_DEG:g} to {MAX_FOV_DEG:g} degrees. Check that the focal length is in pixels "
                "for this frame size (not in mm, nor for another resolution).")
