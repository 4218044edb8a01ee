"""Reference augmentation and input degradation: measured effects, not just 'it ran'."""

import numpy as np
import pytest

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.training.degrade import (Degradation, ReferenceAugment, add_noise, augment_reference, blur,
                                             degrade_video, jpeg, place_on_white)

NO_JITTER = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue_deg=0.0)


def l_shape(size=40):
    """An asymmetric object (an L of two colours) on grey, and its mask."""
    frame = np.full((size, size, 3), 90, np.uint8)
    alpha = np.zeros((size, size), bool)
    alpha[8:32, 10:16] = True
    alpha[26:32, 10:30] = True
    frame[alpha] = (200, 40, 40)
    frame[26:32, 22:30] = (40, 40, 200)
    return frame, alpha


def test_place_on_white_keeps_object_and_whitens_background():
    frame, alpha = l_shape()
    out = place_on_white(frame, alpha, (32, 48), scale=1.0)
    assert out.shape == (32, 48, 3)
    red = (out[..., 0] > 150) & (out[..., 1] < 100)
    white = out.min(axis=-1) == 255
    assert red.sum() > 100                      # the object is there, scaled to the canvas height
    assert white.mean() > 0.6                   # everything else is white (no grey from the frame)
    assert not ((out == 90).all(axis=-1)).any()
    ys = np.nonzero(~white)[0]
    assert ys.min() <= 1 and ys.max() >= 30     # scale 1 fills the height


def test_flip_mirrors_the_object():
    frame, alpha = l_shape()
    cfg = ReferenceAugment(flip_prob=1.0, crop_max=0.0, scale_min=0.8, scale_max=0.8, shift_max=0.0, **NO_JITTER)
    flipped, params = augment_reference(frame, alpha, (40, 40), np.random.default_rng(0), cfg)
    plain = place_on_white(frame, alpha, (40, 40), scale=0.8)
    mirrored = place_on_white(frame[:, ::-1], alpha[:, ::-1], (40, 40), scale=0.8)
    assert params["flip"] is True
    assert np.abs(flipped.astype(int) - mirrored.astype(int)).mean() < 1.0
    assert np.abs(flipped.astype(int) - plain.astype(int)).mean() > 10.0


def test_augmented_references_differ_from_the_clean_cutout_and_repeat_with_the_seed():
    frame, alpha = l_shape()
    clean = place_on_white(frame, alpha, (40, 40), scale=0.9)
    a, pa = augment_reference(frame, alpha, (40, 40), np.random.default_rng(3))
    b, pb = augment_reference(frame, alpha, (40, 40), np.random.default_rng(3))
    c, _ = augment_reference(frame, alpha, (40, 40), np.random.default_rng(4))
    assert np.array_equal(a, b) and pa == pb
    assert np.abs(a.astype(int) - clean.astype(int)).mean() > 3.0   # no pixel-exact copy of the cut-out
    assert not np.array_equal(a, c)
    assert 0.6 <= pa["scale"] <= 0.95


def test_colour_jitter_stays_within_its_range():
    frame, alpha = l_shape()
    cfg = ReferenceAugment(flip_prob=0.0, crop_max=0.0, scale_min=0.9, scale_max=0.9, shift_max=0.0,
                           brightness=0.1, contrast=0.0, saturation=0.0, hue_deg=0.0)
    clean = place_on_white(frame, alpha, (40, 40), scale=0.9).astype(float)
    for seed in range(5):
        out, params = augment_reference(frame, alpha, (40, 40), np.random.default_rng(seed), cfg)
        red = (clean[..., 0] > 150) & (clean[..., 1] < 100)
        ratio = out[red][:, 0].mean() / clean[red][:, 0].mean()
        assert abs(ratio - params["brightness"]) < 0.03
        assert 0.9 <= params["brightness"] <= 1.1


def texture(n=3, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def high_freq(frames):
    x = frames.astype(float)
    return np.abs(np.diff(x, axis=2)).mean()


def test_blur_removes_high_frequencies():
    frames = texture()
    assert high_freq(blur(frames, 1.5)) < 0.4 * high_freq(frames)


def test_noise_has_the_requested_std():
    flat = np.full((4, 32, 32, 3), 128, np.uint8)
    noisy = add_noise(flat, 6.0, np.random.default_rng(0))
    assert abs((noisy.astype(float) - 128).std() - 6.0) < 0.3


def test_jpeg_error_shrinks_with_quality():
    frames = texture()
    low = np.abs(jpeg(frames, 20).astype(int) - frames).mean()
    high = np.abs(jpeg(frames, 95).astype(int) - frames).mean()
    assert low > high > 0


def test_degrade_probability():
    frames = texture()
    same, params = degrade_video(frames, np.random.default_rng(0), Degradation(prob=0.0))
    assert same is frames and params == {}
    for seed in range(6):
        out, params = degrade_video(frames, np.random.default_rng(seed), Degradation(prob=1.0))
        assert params and not np.array_equal(out, frames)


def test_bad_settings_are_rejected():
    with pytest.raises(InsertAnywhereError, match="scale range"):
        ReferenceAugment(scale_min=0.9, scale_max=0.5)
    with pytest.raises(InsertAnywhereError, match="probability"):
        Degradation(prob=1.5)
    with pytest.raises(InsertAnywhereError, match="empty"):
        place_on_white(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), bool), (8, 8))
