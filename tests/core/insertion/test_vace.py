"""VACE conditioning, the sampler (progress, cancel, determinism), memory options and long videos."""

from __future__ import annotations

import numpy as np
import pytest

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.insertion import conditioning, long_video, vace, wan
from insertanywhere.insertion.options import VACEOptions

from insertion_helpers import box_masks, scene_video


# --------------------------------------------------------------------------------------------- conditioning


def test_prepare_builds_insertanywhere_conditioning(video, masks, first_frame):
    reference = np.zeros((10, 30, 3), np.uint8)  # wide object image
    inputs = conditioning.prepare(video[:6], masks[:6], first_frame, reference)
    assert inputs.video.shape == (9, 32, 48, 3)  # 6 frames padded to 4k+1
    assert np.array_equal(inputs.video[0], first_frame)  # the inpainted frame is frame 0
    assert inputs.masks[0].sum() == 0 and inputs.masks[1].sum() == masks[1].sum()  # frame 0 kept, white = generate
    assert (inputs.video[1][masks[1]] == conditioning.GRAY).all()  # grey where VACE generates
    assert np.array_equal(inputs.video[1][~masks[1]], video[1][~masks[1]])
    assert np.array_equal(inputs.video[6:], np.repeat(inputs.video[5:6], 3, axis=0))  # last frame repeated
    ref = inputs.reference  # 10x30 object scaled by 1.6 to 16x48, centred on white: aspect kept, nothing cut
    assert ref.shape == (32, 48, 3)
    black = (ref == 0).all(axis=2)
    assert black[8:24].all() and not black[:8].any() and not black[24:].any()


def test_prepare_snaps_sizes_and_restore_undoes_it():
    video, masks = scene_video(5, 40, 50), box_masks(5, 40, 50)
    inputs = conditioning.prepare(video, masks, video[0], mask_fill="keep")
    assert inputs.work_size == (32, 48)
    back = conditioning.restore(inputs.video, inputs)
    assert back.shape == video.shape
    assert np.abs(back[1:].astype(int) - video[1:]).mean() < 6  # resized down and up again


def test_prepare_rejects_mismatched_masks(video, first_frame):
    with pytest.raises(InsertAnywhereError, match="do not match the frames"):
        conditioning.prepare(video, np.zeros((9, 16, 16), bool), first_frame)
    with pytest.raises(InsertAnywhereError, match="4 masks for 9 frames"):
        conditioning.prepare(video, np.zeros((4, 32, 48), bool), first_frame)


@pytest.mark.parametrize("n, expected", [(1, 1), (2, 5), (5, 5), (6, 9), (81, 81), (82, 85)])
def test_padded_count_is_4k_plus_1(n, expected):
    assert conditioning.padded_count(n) == expected


# --------------------------------------------------------------------------------------------- sampler


def _insert(model, video, masks, first_frame, progress=None, **kwargs):
    settings = dict(steps=2, cfg=2.0, seed=0)
    settings.update(kwargs)
    return vace.insert_object(model, video, masks, first_frame, None, "a red mug", options=VACEOptions(**settings),
                              progress=progress)


def test_insert_returns_frames_at_input_size_deterministically(wan_model, video, masks, first_frame):
    steps = []
    out = _insert(wan_model, video[:7], masks[:7], first_frame, progress=lambda d, t: steps.append((d, t)))
    assert out.shape == (7, 32, 48, 3) and out.dtype == np.uint8
    assert steps == [(1, 2), (2, 2)]  # one progress step per denoising step
    assert np.array_equal(out, _insert(wan_model, video[:7], masks[:7], first_frame))
    other = _insert(wan_model, video[:7], masks[:7], first_frame, seed=1)
    assert np.abs(other.astype(int) - out).mean() > 1.0


def test_reference_image_changes_the_result(wan_model, video, masks, first_frame):
    plain = _insert(wan_model, video[:5], masks[:5], first_frame)
    ref = np.full((16, 16, 3), (200, 40, 30), np.uint8)
    with_ref = vace.insert_object(wan_model, video[:5], masks[:5], first_frame, ref, "a red mug",
                                  options=VACEOptions(steps=2, cfg=2.0))
    assert np.abs(with_ref.astype(int) - plain).mean() > 0.5


def test_cancel_stops_sampling_and_leaves_the_model_clean(wan_model, video, masks, first_frame, tmp_path):
    from tiny_models import random_lora, write_wan_lora

    from insertanywhere.insertion.lora import read_lora

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        if done >= 1:
            raise Cancelled

    spec = read_lora(write_wan_lora(tmp_path / "l.safetensors", random_lora(wan_model.transformer), "comfy"),
                     wan_model.transformer)
    with pytest.raises(Cancelled):
        _insert(wan_model.with_lora(spec), video[:5], masks[:5], first_frame, steps=5, progress=cancel)
    assert not any("lora" in name for name, _ in wan_model.transformer.named_modules())


def test_bad_settings_are_user_errors(wan_model, video, masks, first_frame):
    with pytest.raises(InsertAnywhereError, match="VACEOptions.scheduler = 'ddim' is not valid: use one of 'unipc'"):
        _insert(wan_model, video, masks, first_frame, scheduler="ddim")
    with pytest.raises(InsertAnywhereError, match="VACEOptions.window = 10 .*4k\\+1"):
        _insert(wan_model, video, masks, first_frame, window=10)
    with pytest.raises(InsertAnywhereError, match="Overlap 6 must be between 1 and window - 4 = 5"):
        _insert(wan_model, scene_video(13), box_masks(13), first_frame, window=9, overlap=6)  # needs two windows


@pytest.mark.parametrize("scheduler", ["euler", "dpm++"])
def test_other_schedulers_run(wan_model, video, masks, first_frame, scheduler):
    out = _insert(wan_model, video[:5], masks[:5], first_frame, scheduler=scheduler, shift=5.0)
    assert out.shape == (5, 32, 48, 3) and out.std() > 1


# --------------------------------------------------------------------------------------------- memory options


@pytest.mark.parametrize("memory, tolerance", [
    (wan.MemoryOptions(offload="model"), 0.05),
    (wan.MemoryOptions(offload="group"), 0.05),
    (wan.MemoryOptions(fp8_layerwise=True), 3.0),
])
def test_memory_options_match_the_plain_path(wan_folder, wan_model, video, masks, first_frame, memory, tolerance):
    plain = _insert(wan_model, video[:5], masks[:5], first_frame).astype(np.float32)
    model = wan.load_wan_vace(folder=wan_folder, memory=memory)
    out = _insert(model, video[:5], masks[:5], first_frame).astype(np.float32)
    other_seed = _insert(wan_model, video[:5], masks[:5], first_frame, seed=7).astype(np.float32)
    error = np.abs(out - plain).mean()
    assert error <= tolerance, error
    assert error < 0.25 * np.abs(other_seed - plain).mean()  # far below what a different seed changes


def test_vae_tiling_matches_the_plain_path(wan_folder):
    """Tiling is exact when the VAE's receptive field fits in the tile overlap (as for the trained VAE)."""
    from tiny_models import localize_vae

    plain = wan.load_wan_vace(folder=wan_folder)
    tiled = wan.load_wan_vace(folder=wan_folder, memory=wan.MemoryOptions(vae_tiling=True, vae_tile=64))
    for model in (plain, tiled):
        localize_vae(model.pipe.vae)
    video, masks = scene_video(5, 96, 144), box_masks(5, 96, 144)
    first = video[0]
    a = _insert(plain, video, masks, first).astype(np.float32)
    b = _insert(tiled, video, masks, first).astype(np.float32)
    assert tiled.pipe.vae.use_tiling and not plain.pipe.vae.use_tiling
    seed = _insert(plain, video, masks, first, seed=9).astype(np.float32)
    error = np.abs(a - b).mean()
    assert error < 0.25 * np.abs(seed - a).mean(), (error, np.abs(seed - a).mean())


# --------------------------------------------------------------------------------------------- long videos


def test_plan_windows_cover_the_video_with_4k_plus_1_windows():
    windows = long_video.plan_windows(201, 81, 9)
    assert windows[0] == (0, 81) and windows[-1] == (120, 201)
    assert all(e - s == 81 for s, e in windows)
    assert all(b[0] <= a[1] - 9 for a, b in zip(windows, windows[1:]))
    assert long_video.plan_windows(33, 81, 9) == [(0, 33)]
    with pytest.raises(InsertAnywhereError, match="Overlap"):
        long_video.plan_windows(201, 81, 80)


def test_windows_get_the_previous_frames_and_colour_is_locked():
    """Each window sees the previous window's last frames as known; a per-window colour drift is removed."""
    rng = np.random.default_rng(0)
    video = rng.integers(40, 200, (29, 16, 16, 3)).astype(np.uint8)
    masks = np.ones((29, 16, 16), np.float32)
    seen = []

    def sample(part, part_masks, index):
        seen.append((part.copy(), part_masks.copy()))
        drift = np.array([12.0, -8.0, 5.0]) * index  # every window comes out a bit off in colour
        return np.clip(part.astype(np.float32) + drift, 0, 255).astype(np.uint8)

    windows = long_video.plan_windows(29, 13, 5)
    out = long_video.generate(video, masks, sample, windows)
    unlocked = long_video.generate(video, masks, sample, windows, colour_lock=False)
    assert len(windows) == 3
    s1 = windows[1][0]
    part, part_masks = seen[1]  # second window of the locked run
    assert part_masks[: 13 - s1].max() == 0  # shared frames are known ...
    assert np.abs(part[: 13 - s1].astype(int) - out[s1:13]).max() <= 12  # ... and come from window 0
    drift_locked = np.abs(out[-5:].astype(int) - video[-5:]).mean()
    drift_unlocked = np.abs(unlocked[-5:].astype(int) - video[-5:]).mean()
    assert drift_locked < 2.0 < 10.0 < drift_unlocked


def test_long_video_end_to_end(wan_model, first_frame):
    video, masks = scene_video(13), box_masks(13)
    calls = []
    out = vace.insert_object(wan_model, video, masks, first_frame, None, "a red mug",
                             options=VACEOptions(steps=2, cfg=1.0, window=9, overlap=4),
                             progress=lambda d, t: calls.append((d, t)))
    assert out.shape == (13, 32, 48, 3)
    assert calls[-1] == (4, 4)  # two windows of two steps
    assert [d for d, _ in calls] == [1, 2, 3, 4]
