"""Augmentations for insertion training data.

Reference augmentation (as in Split-then-Merge) keeps the model from learning to
copy-paste the reference pixels: the object cut-out is flipped, cropped, rescaled
and colour-jittered before it is placed on its white canvas.

Input degradation (as in NeoVerse) makes the model robust to imperfect
conditioning: blur, sensor noise and JPEG compression applied to the input video.

Every function takes a `numpy.random.Generator`, so a seeded build is repeatable,
and returns the parameters it drew so the manifest can record them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InsertAnywhereError


@dataclass(frozen=True)
class ReferenceAugment:
    """Ranges of the random reference augmentation (0 disables a part)."""

    flip_prob: float = 0.5
    crop_max: float = 0.12        # each side of the object box loses up to this fraction
    scale_min: float = 0.6        # object size relative to the largest fit in the canvas
    scale_max: float = 0.95
    shift_max: float = 0.08       # centre offset, as a fraction of the canvas size
    brightness: float = 0.15      # multiplicative, 1 +- this
    contrast: float = 0.15
    saturation: float = 0.15
    hue_deg: float = 6.0          # hue rotation, degrees

    def __post_init__(self):
        if not (0 < self.scale_min <= self.scale_max <= 1):
            raise InsertAnywhereError(
                f"Reference scale range {self.scale_min}..{self.scale_max} is invalid; use 0 < min <= max <= 1.")
        if not (0 <= self.crop_max < 0.5):
            raise InsertAnywhereError(f"Reference crop_max={self.crop_max} must be in [0, 0.5).")


@dataclass(frozen=True)
class Degradation:
    """Probability and ranges of the random input degradation."""

    prob: float = 0.0             # chance that a sample is degraded at all
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    noise_std: tuple[float, float] = (2.0, 8.0)       # in 0..255 units
    jpeg_quality: tuple[int, int] = (35, 85)

    def __post_init__(self):
        if not 0 <= self.prob <= 1:
            raise InsertAnywhereError(f"Degradation probability {self.prob} must be in [0, 1].")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise InsertAnywhereError(f"JPEG quality range {self.jpeg_quality} must lie in 1..100, low <= high.")


# ----------------------------------------------------------------------------- cut-outs


def object_box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (y0, y1, x0, x1), end-exclusive, of a non-empty bool mask [H, W]."""
    ys, xs = np.nonzero(alpha)
    if ys.size == 0:
        raise InsertAnywhereError("The object mask is empty in the chosen frame; no reference can be cut out.")
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


def bleed(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`rgb` [h, w, 3] with every pixel outside `alpha` [h, w] set to its nearest object pixel's
    colour, so resizing never mixes background colours into the object's edge."""
    from scipy.ndimage import distance_transform_edt

    if alpha.all():
        return rgb
    _, (iy, ix) = distance_transform_edt(~alpha, return_indices=True)
    return rgb[iy, ix]


def place_on_white(rgb: np.ndarray, alpha: np.ndarray, canvas: tuple[int, int], scale: float = 0.9,
                   shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Paste the object of `rgb` [h, w, 3] (where `alpha` [h, w] is set) on a white canvas (H, W).

    The object's box is scaled to `scale` times the largest size that fits the canvas, centred,
    then moved by `shift` (dy, dx) fractions of the canvas. Returns uint8 [H, W, 3].
    """
    import cv2

    y0, y1, x0, x1 = object_box(alpha)
    crop = bleed(rgb[y0:y1, x0:x1], alpha[y0:y1, x0:x1]).astype(np.float32)
    mask = alpha[y0:y1, x0:x1].astype(np.float32)
    H, W = canvas
    fit = min(H / crop.shape[0], W / crop.shape[1]) * scale
    h, w = max(1, int(round(crop.shape[0] * fit))), max(1, int(round(crop.shape[1] * fit)))
    interp = cv2.INTER_AREA if fit < 1 else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (w, h), interpolation=interp)
    mask = cv2.resize(mask, (w, h), interpolation=interp)[..., None]
    top = int(np.clip((H - h) // 2 + shift[0] * H, 0, H - h))
    left = int(np.clip((W - w) // 2 + shift[1] * W, 0, W - w))
    out = np.full((H, W, 3), 255.0, np.float32)
    window = out[top:top + h, left:left + w]
    out[top:top + h, left:left + w] = crop * mask + window * (1 - mask)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def cutout_on_white(frame: np.ndarray, alpha: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    """The object of `frame` [H, W, 3] cut out on white and centred on a canvas (H, W)."""
    return place_on_white(frame, alpha, canvas, scale=0.9)


# ----------------------------------------------------------------------------- reference augmentation


def jitter_colour(rgb: np.ndarray, rng: np.random.Generator, cfg: ReferenceAugment) -> tuple[np.ndarray, dict]:
    """Random brightness / contrast / saturation / hue change of uint8 `rgb` [..., 3]."""
    import cv2

    b = 1 + rng.uniform(-cfg.brightness, cfg.brightness)
    c = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
    s = 1 + rng.uniform(-cfg.saturation, cfg.saturation)
    hue = rng.uniform(-cfg.hue_deg, cfg.hue_deg)
    x = rgb.astype(np.float32) * b
    x = (x - x.mean()) * c + x.mean()
    x = np.clip(x, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(x.reshape(-1, 1, 3), cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + hue * 256 / 360) % 256
    hsv[..., 1] = np.clip(hsv[..., 1] * s, 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB_FULL).reshape(rgb.shape)
    return out, {"brightness": b, "contrast": c, "saturation": s, "hue_deg": hue}


def augment_reference(frame: np.ndarray, alpha: np.ndarray, canvas: tuple[int, int], rng: np.random.Generator,
                      cfg: ReferenceAugment = ReferenceAugment()) -> tuple[np.ndarray, dict]:
    """An augmented cut-out of the object in `frame` [H, W, 3] (mask `alpha` [H, W]) on white.

    Returns (uint8 [canvas H, canvas W, 3], the drawn parameters).
    """
    y0, y1, x0, x1 = object_box(alpha)
    bh, bw = y1 - y0, x1 - x0
    cut = [int(rng.uniform(0, cfg.crop_max) * n) for n in (bh, bh, bw, bw)]
    y0, y1, x0, x1 = y0 + cut[0], y1 - cut[1], x0 + cut[2], x1 - cut[3]
    rgb = frame[y0:y1, x0:x1]
    mask = alpha[y0:y1, x0:x1]
    if not mask.any():  # a thin object lost to the crop: keep the full box
        return augment_reference(frame, alpha, canvas, rng, ReferenceAugment(**{**asdict(cfg), "crop_max": 0.0}))
    flip = bool(rng.random() < cfg.flip_prob)
    if flip:
        rgb, mask = rgb[:, ::-1], mask[:, ::-1]
    rgb, colour = jitter_colour(np.ascontiguousarray(rgb), rng, cfg)
    scale = float(rng.uniform(cfg.scale_min, cfg.scale_max))
    shift = (float(rng.uniform(-cfg.shift_max, cfg.shift_max)), float(rng.uniform(-cfg.shift_max, cfg.shift_max)))
    out = place_on_white(rgb, np.ascontiguousarray(mask), canvas, scale, shift)
    return out, {"flip": flip, "crop": cut, "scale": scale, "shift": list(shift), **colour}


# ----------------------------------------------------------------------------- input degradation


def blur(frames: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of each uint8 frame [F, H, W, 3]."""
    import cv2

    return np.stack([cv2.GaussianBlur(f, (0, 0), sigmaX=sigma) for f in frames])


def add_noise(frames: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise (std in 0..255 units) on uint8 frames [F, H, W, 3]."""
    noisy = frames.astype(np.float32) + rng.normal(0.0, std, frames.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip each uint8 RGB frame [F, H, W, 3] through JPEG at `quality`."""
    import cv2

    out = []
    for f in frames:
        ok, buf = cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise InsertAnywhereError("JPEG encoding failed while degrading the input video.")
        out.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return np.stack(out)


def degrade_video(frames: np.ndarray, rng: np.random.Generator,
                  cfg: Degradation = Degradation()) -> tuple[np.ndarray, dict]:
    """With probability `cfg.prob`, degrade uint8 frames [F, H, W, 3] by a random subset
    (at least one) of blur, noise and JPEG compression, in that order.

    Returns (frames, parameters applied; empty when the sample was left clean).
    """
    if rng.random() >= cfg.prob:
        return frames, {}
    ops = rng.random(3) < 0.5
    if not ops.any():
        ops[rng.integers(3)] = True
    params: dict = {}
    if ops[0]:
        params["blur_sigma"] = float(rng.uniform(*cfg.blur_sigma))
        frames = blur(frames, params["blur_sigma"])
    if ops[1]:
        params["noise_std"] = float(rng.uniform(*cfg.noise_std))
        frames = add_noise(frames, params["noise_std"], rng)
    if ops[2]:
        params["jpeg_quality"] = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        frames = jpeg(frames, params["jpeg_quality"])
    return frames, params
