"""Composite back (bit-identical outside, colour-matched inside) and first-frame inpainting."""

from __future__ import annotations

import numpy as np
import pytest

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.insertion import composite, inpaint
from insertanywhere.insertion.composite import blend_alpha
from insertanywhere.insertion.options import KontextOptions

from insertion_helpers import box_masks, scene_video


def _generated(video, masks, shift=(18, -12, 10)):
    """What a generator returns: the scene with a colour shift everywhere and the object painted in."""
    out = np.clip(video.astype(int) + np.array(shift), 0, 255).astype(np.uint8)
    out[masks] = (200, 40, 30)
    return out


def _grow_box(mask, pixels):
    ys, xs = np.where(mask)
    out = np.zeros_like(mask)
    out[max(ys.min() - pixels, 0):ys.max() + pixels + 1, max(xs.min() - pixels, 0):xs.max() + pixels + 1] = True
    return out


def test_outside_the_feathered_mask_is_bit_identical(video, masks):
    out = composite.composite(video, _generated(video, masks), masks, dilate=3, feather=4)
    reach = np.stack([blend_alpha(m, 3, 4) > 0 for m in masks])
    assert np.array_equal(out[~reach], video[~reach])
    assert not (reach & ~np.stack([_grow_box(m, 8) for m in masks])).any()  # dilation + feather stay near it
    # the object is pasted, minus the generator's colour shift measured around it
    assert np.abs(out[masks].astype(int) - (182, 52, 20)).mean() < 3


def test_colour_match_removes_the_generators_shift(video, masks):
    shift = (18, -12, 10)
    generated = _generated(video, masks, shift)
    generated[masks] = np.clip(video[masks].astype(int) + np.array(shift), 0, 255)  # "object" = shifted scene
    matched = composite.composite(video, generated, masks, dilate=3, feather=4, colour_match=True)
    plain = composite.composite(video, generated, masks, dilate=3, feather=4, colour_match=False)
    ring = np.stack([blend_alpha(m, 3, 4) > 0 for m in masks])
    err_matched = np.abs(matched[ring].astype(int) - video[ring]).mean()
    err_plain = np.abs(plain[ring].astype(int) - video[ring]).mean()
    assert err_matched < 2.5 < 8.0 < err_plain


def test_padding_frames_and_other_sizes_are_handled(video, masks):
    generated = np.concatenate([_generated(video, masks)] * 2)[:13]  # 4k+1 padded and longer
    small = generated[:, ::2, ::2]
    out = composite.composite(video, small, masks)
    assert out.shape == video.shape
    with pytest.raises(InsertAnywhereError, match="generate at least as many"):
        composite.composite(video, generated[:4], masks)


def test_feathered_alpha_is_one_on_the_grown_mask_and_falls_off():
    mask = np.zeros((40, 40), bool)
    mask[15:25, 15:25] = True
    alpha = blend_alpha(mask, 2, 6)
    assert (alpha[13:27, 15:25] == 1).all() and (alpha[15:25, 13:27] == 1).all()
    assert 0 < alpha[20, 29] < 1 and alpha[20, 36] == 0
    assert np.all(np.diff(alpha[20, 26:36]) <= 1e-6)


# --------------------------------------------------------------------------------------------- Poisson


def _object_case():
    scene = scene_video(1, 48, 64)[0]
    mask = np.zeros((48, 64), bool)
    mask[12:36, 16:44] = True
    rng = np.random.default_rng(1)
    render = scene.copy()
    render[mask] = np.clip(np.array([200, 40, 30]) + rng.integers(-20, 20, (mask.sum(), 3)), 0, 255)
    return scene, render, mask


def test_poisson_insert_keeps_the_object_and_blends_the_edge():
    scene, render, mask = _object_case()
    out = inpaint.poisson_insert(scene, render, mask)
    assert np.array_equal(out[~mask], scene[~mask])
    inner = np.zeros_like(mask)
    inner[20:28, 24:36] = True
    r, g, b = out[inner].mean(0)
    assert r > g + 80 and r > b + 80  # takes some scene light, but red stays red
    faithful = inpaint.poisson_insert(scene, render, mask, colour_strength=0.0, harmonize=0.0)
    assert np.abs(faithful[inner].mean(0) - render[inner].mean(0)).max() < 20
    texture = np.corrcoef(out[inner][:, 0].astype(float), render[inner][:, 0].astype(float))[0, 1]
    assert texture > 0.9  # and its own detail

    def seam(image):  # jump across the mask's left and right edges
        return np.abs(image[12:36, 16].astype(int) - image[12:36, 15]).mean() + \
            np.abs(image[12:36, 43].astype(int) - image[12:36, 44]).mean()

    pasted = scene.copy()
    pasted[mask] = render[mask]
    assert seam(out) < 0.6 * seam(pasted)


def test_poisson_insert_with_the_mask_at_the_border():
    scene, render, _ = _object_case()
    mask = np.zeros((48, 64), bool)
    mask[0:20, 0:20] = True
    render[mask] = (200, 40, 30)
    out = inpaint.poisson_insert(scene, render, mask)
    assert np.array_equal(out[~mask], scene[~mask]) and out[5, 5, 0] > out[5, 5, 1] + 60


def test_empty_first_frame_mask_is_a_user_error():
    scene, render, mask = _object_case()
    with pytest.raises(InsertAnywhereError, match="not visible in the first frame"):
        inpaint.poisson_insert(scene, render, np.zeros_like(mask))


# --------------------------------------------------------------------------------------------- Kontext


@pytest.fixture(scope="module")
def kontext(tmp_path_factory):
    from tiny_models import build_flux_kontext_folder

    return inpaint.load_kontext(build_flux_kontext_folder(tmp_path_factory.mktemp("flux") / "tiny-flux-kontext"))


def test_kontext_changes_only_the_masked_region(kontext):
    scene = scene_video(1)[0]
    mask = box_masks(1)[0]
    reference = np.full((24, 24, 3), (200, 40, 30), np.uint8)
    steps = []
    options = KontextOptions(steps=2, resolution="input", grow=2, feather=2)
    out = inpaint.kontext_inpaint(kontext, scene, mask, reference, "a red mug", options,
                                  progress=lambda d, t: steps.append(d))
    reach = blend_alpha(mask, 2, 2) > 0
    assert np.array_equal(out[~reach], scene[~reach])
    assert np.abs(out[mask].astype(int) - scene[mask]).mean() > 5
    assert steps == [1, 2]
    again = inpaint.kontext_inpaint(kontext, scene, mask, reference, "a red mug", options)
    assert np.array_equal(out, again)


def test_kontext_folder_errors(tmp_path):
    with pytest.raises(InsertAnywhereError, match="does not exist"):
        inpaint.load_kontext(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model_index.json").write_text("{}")
    with pytest.raises(InsertAnywhereError, match="transformer, vae missing"):
        inpaint.load_kontext(tmp_path / "half")
