"""Procedural textures of the world's surfaces: tiles, band-limited fractal noise, grout, Lambert light."""

from __future__ import annotations

import numpy as np

from .raycast import _argmin3, _rotate
from .world import _DEFAULT_LIGHT, _Light


def _hash01(ix, iy, iz, salt):
    """Integer lattice hash -> float64 in [0, 1)."""
    h = (ix * 73856093) ^ (iy * 19349663) ^ (iz * 83492791) ^ salt
    h = h & 0xFFFFFFFF
    for _ in range(2):
        h = h ^ (h >> 16)
        h = (h * 0x45D9F3B) & 0xFFFFFFFF
    h = h ^ (h >> 16)
    return h / 4294967296.0


def _value_noise(p: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """Smooth 3-D value noise in [0, 1): p [N, 3], salt [N] int64."""
    base = np.floor(p)
    f = p - base
    w = f * f * (3.0 - 2.0 * f)
    i = base.astype(np.int64)
    out = np.zeros(p.shape[0])
    for dx in (0, 1):
        wx = w[:, 0] if dx else 1.0 - w[:, 0]
        for dy in (0, 1):
            wy = w[:, 1] if dy else 1.0 - w[:, 1]
            for dz in (0, 1):
                wz = w[:, 2] if dz else 1.0 - w[:, 2]
                out += wx * wy * wz * _hash01(i[:, 0] + dx, i[:, 1] + dy, i[:, 2] + dz, salt)
    return out


def _fbm(p: np.ndarray, salt: np.ndarray, cycles_per_pixel: np.ndarray, octaves: int = 4) -> np.ndarray:
    """Fractal noise in about [0, 1], band-limited to the pixel footprint.

    p [N, 3] noise coordinates; cycles_per_pixel [N]: base-octave noise cycles per pixel. Octaves
    finer than ~2 pixels fade to their mean, so point sampling does not alias (a cheap mip-map).
    """
    total, amp, norm = np.zeros(p.shape[0]), 1.0, 0.0
    for k in range(octaves):
        wavelength_px = 1.0 / np.maximum(cycles_per_pixel * 2.0 ** k, 1e-9)
        keep = np.clip((wavelength_px - 2.0) / 2.0, 0.0, 1.0)
        sel = np.flatnonzero(keep > 0.0)  # evaluate only where the octave is resolved
        total += 0.5 * amp
        total[sel] += amp * keep[sel] * (_value_noise(p[sel] * (2.0 ** k) + 17.0 * k, salt[sel] + 101 * k) - 0.5)
        norm += amp
        amp *= 0.65
    return total / norm


def _shade(prim: np.ndarray, local: np.ndarray, normal_local: np.ndarray, normal_world: np.ndarray,
           footprint: np.ndarray, mats: dict, salt: int, light: _Light = _DEFAULT_LIGHT) -> np.ndarray:
    """Colour [N, 3] in 0..1 of hits: tiles + fractal noise, Lambert-lit.

    footprint [N]: size of the pixel on the surface in metres. Noise octaves, tile colour steps
    and grout lines are box-filtered over it, so the point-sampled image does not alias.
    """
    tile = mats["tile"][prim]
    on_face = np.abs(normal_local) < 0.5  # the two axes that span the hit face
    tiled = (tile < 50.0) & on_face
    scaled = local / tile
    cell = np.where(tiled, np.floor(scaled), 0).astype(np.int64)
    frac = scaled - np.floor(scaled)
    edge = np.where(tiled, np.minimum(frac, 1.0 - frac) * tile, np.inf)  # metres to the tile border
    nearest, axis = _argmin3(edge[:, 0], edge[:, 1], edge[:, 2])
    rows = np.arange(len(prim))
    salt_p = prim.astype(np.int64) * 7919 + salt
    mix = _hash01(cell[:, 0], cell[:, 1], cell[:, 2], salt_p)
    # Blend with the neighbouring tile across the nearest border within half a pixel of it.
    step = np.where(frac[rows, axis] < 0.5, -1, 1)
    neighbour = cell.copy()
    neighbour[rows, axis] += np.where(np.isfinite(nearest), step, 0)
    mix_n = _hash01(neighbour[:, 0], neighbour[:, 1], neighbour[:, 2], salt_p)
    blend = np.clip(0.5 - nearest / footprint, 0.0, 0.5)
    mix = (1.0 - blend) * mix + blend * mix_n
    color = mats["a"][prim] * (1.0 - mix[:, None]) + mats["b"][prim] * mix[:, None]
    freq = mats["freq"][prim]
    noise = _fbm(local * freq, prim.astype(np.int64) * 31 + salt, mats["freq_max"][prim] * footprint)
    color = color * (1.0 + mats["contrast"][prim][:, None] * (2.0 * noise[:, None] - 1.0))
    # Grout: the fraction of the pixel covered by a line of width g centred on the border.
    g = mats["grout"][prim]
    cover = np.clip(np.minimum(nearest + 0.5 * footprint, 0.5 * g) - np.maximum(nearest - 0.5 * footprint, -0.5 * g),
                    0.0, None) / footprint
    color = color * (1.0 - 0.55 * np.where(np.isfinite(nearest), cover, 0.0))[:, None]
    lit = light.scene[0] + light.scene[1] * np.clip(_rotate(normal_world, light.direction[None])[:, 0], 0.0, None)
    return np.clip(color * lit[:, None], 0.0, 1.0)


def _hsv(h: float, s: float, v: float) -> tuple:
    import colorsys

    return colorsys.hsv_to_rgb(h % 1.0, s, v)
