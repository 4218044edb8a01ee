"""Triplet builder: layouts, masks that cover side effects, references, manifest."""

import json

import cv2
import numpy as np
import pytest
from train_helpers import CLIP_FRAMES, HEIGHT, WIDTH, mask_video, write_removal_clip

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.sample_scene import make_scene
from insertanywhere.training.dataset import TripletDataset
from insertanywhere.training.triplets import (LAYOUTS, BuildConfig, Layout, build_triplets, choose_reference,
                                              dilate_masks, effect_masks, find_triplets, load_vision_embedder)
from insertanywhere.video import read_video


def shadow_pixels(scene):
    """Pixels the object changes outside its own mask (its contact shadow)."""
    diff = np.abs(scene.composite.astype(int) - scene.frames.astype(int)).max(axis=-1)
    return (diff > 12) & ~scene.gt_visible


# ----------------------------------------------------------------------------- discovery


def test_rose_layout_is_found_and_a_missing_counterpart_reported(tmp_path):
    env = tmp_path / "Env1"
    for kind in ("Unedited", "Edited", "Masked"):
        (env / f"Env1_{kind}").mkdir(parents=True)
        for clip in ("CineCameraSequence_0", "CineCameraSequence_1"):
            if kind == "Masked" and clip.endswith("_1"):
                continue
            (env / f"Env1_{kind}" / f"{clip}.mp4").write_bytes(b"")
    found, problems = find_triplets(tmp_path, LAYOUTS["rose"])
    assert [t.id for t in found] == ["Env1__CineCameraSequence_0"]
    t = found[0]
    assert (t.present.parent.name, t.removed.parent.name, t.mask.parent.name) == \
        ("Env1_Unedited", "Env1_Edited", "Env1_Masked")
    assert len(problems) == 1 and "CineCameraSequence_1" in problems[0]


def test_sample_folders_with_frame_folders_and_custom_names(tmp_path):
    clip = tmp_path / "shots" / "a"
    for name in ("with", "without", "alpha"):
        (clip / name).mkdir(parents=True)
        cv2.imwrite(str(clip / name / "00000.png"), np.zeros((16, 16, 3), np.uint8))
    (clip / "references").mkdir()
    cv2.imwrite(str(clip / "references" / "view.png"), np.full((16, 16, 3), 255, np.uint8))
    found, _ = find_triplets(tmp_path, Layout("with", "without", "alpha"))
    assert [t.id for t in found] == ["shots__a"]
    assert found[0].present == clip / "with" and [p.name for p in found[0].references] == ["view.png"]


def test_layout_errors(tmp_path):
    with pytest.raises(InsertAnywhereError, match="does not exist"):
        find_triplets(tmp_path / "nope")
    with pytest.raises(InsertAnywhereError, match="No \\(present, removed, mask\\) triples"):
        build_triplets(tmp_path, tmp_path / "out")
    with pytest.raises(InsertAnywhereError, match="different"):
        Layout("a", "a", "b")
    with pytest.raises(InsertAnywhereError, match="4k\\+1"):
        BuildConfig(num_frames=6)


# ----------------------------------------------------------------------------- masks


def test_effect_masks_cover_the_shadow_that_plain_dilation_misses():
    scene = make_scene("static", num_frames=5, width=96, height=64, seed=0)
    shadow = shadow_pixels(scene)
    assert shadow.sum() > 100
    plain = dilate_masks(scene.gt_visible, 0.0, 1)
    effects = effect_masks(scene.composite, scene.frames, scene.gt_visible, threshold=16, reach=1.0)
    covered = plain | dilate_masks(effects, 0.0, 2) | effects
    assert (plain & shadow).sum() / shadow.sum() < 0.4
    assert (covered & shadow).sum() / shadow.sum() > 0.9
    truth = (scene.gt_visible | shadow).sum()
    assert covered.sum() < 1.5 * truth  # grown over the effect only, not over the frame


def test_effect_masks_ignore_compression_noise():
    from insertanywhere.training.degrade import jpeg

    scene = make_scene("moving_support", num_frames=5, width=96, height=64, seed=1)
    shadow = shadow_pixels(scene)
    present, removed = jpeg(scene.composite, 75), jpeg(scene.frames, 75)  # independent artefacts
    effects = effect_masks(present, removed, scene.gt_visible, threshold=BuildConfig().effect_threshold, reach=1.0)
    truth = scene.gt_visible | shadow
    assert (effects & ~truth).sum() < 0.25 * truth.sum()
    assert ((effects | scene.gt_visible) & shadow).sum() > 0.8 * shadow.sum()


def test_dilation_scales_with_the_object():
    obj = np.zeros((2, 64, 64), bool)
    obj[0, 30:34, 30:34] = True        # 4 px object
    obj[1, 10:50, 10:50] = True        # 40 px object
    out = dilate_masks(obj, fraction=0.25, min_px=2)
    grown = out.sum(axis=(1, 2)) - obj.sum(axis=(1, 2))
    assert out[0, 28, 31] and not out[0, 25, 31]    # min 2 px
    assert out[1, 1, 30] and not out[1, 0, 0]       # 10 px = 0.25 * 40
    assert grown[1] > 10 * grown[0]


# ----------------------------------------------------------------------------- the built dataset


def test_built_samples_match_the_source(dataset_dir, removal_data):
    _, scenes = removal_data
    data = TripletDataset(dataset_dir)
    assert data.ids == ["clip0", "clip1"]
    for index, sid in enumerate(data.ids):
        scene, entry, s = scenes[sid], data.entries[index], data.load(index)
        start = entry["source"]["start"]
        clip = slice(start, start + CLIP_FRAMES)
        assert s.target.shape == (CLIP_FRAMES, HEIGHT, WIDTH, 3)
        present, removed = scene.composite[clip].astype(int), scene.frames[clip].astype(int)
        changed = np.abs(present - removed).max(axis=-1) > 24       # where the object made a difference
        assert changed[1:].sum() > 50

        def closer_to_present(frames, t, present=present, removed=removed, changed=changed):
            err_p = np.abs(frames.astype(int) - present[t])[changed[t]].mean()
            err_r = np.abs(frames.astype(int) - removed[t])[changed[t]].mean()
            return err_p < 0.75 * err_r

        assert np.abs(s.target.astype(int) - present).mean() < 8   # two H.264 generations, 4:2:0 chroma
        assert closer_to_present(s.target[1:], slice(1, None))      # target = present video
        assert closer_to_present(s.inputs[:1], slice(0, 1))         # input frame 0 known (present)
        assert not closer_to_present(s.inputs[1:], slice(1, None))  # other input frames = removed
        assert not s.region[0].any()                                                     # frame 0 not generated
        visible = scene.gt_visible[clip][1:]
        assert (s.region[1:] & visible).sum() >= 0.97 * visible.sum()                     # covers the object
        shadow = shadow_pixels(scene)[clip][1:]
        assert (s.region[1:] & shadow).sum() >= 0.9 * shadow.sum()                        # ... and its shadow
        assert s.region.mean() < 0.35
        assert entry["prompt"] == "a vase on the table" and entry["first_frame_known"] is True
        assert len(s.references) == 2


def test_reference_is_the_object_on_white(tmp_path):
    scene = write_removal_clip(tmp_path / "data" / "big", "static", seed=3, size=(160, 96))
    cfg = BuildConfig(num_frames=CLIP_FRAMES, max_side=160, reference_variants=0)
    build_triplets(tmp_path / "data", tmp_path / "ds", cfg, LAYOUTS["simple"])
    entry = TripletDataset(tmp_path / "ds").entries[0]
    clean = cv2.imread(str(tmp_path / "ds" / entry["reference_clean"]))[..., ::-1].astype(int)
    background = clean.min(axis=-1) >= 250
    assert clean.shape == (96, 160, 3) and 0.3 < background.mean() < 0.97
    frame = int(entry["reference"]["source"].split()[-1])
    present, _ = read_video(entry["source"]["present"])  # what the builder cut from
    object_colour = np.median(present[frame][scene.gt_visible[frame]], axis=0)
    core = cv2.erode((~background).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # edges blend with white
    assert np.abs(np.median(clean[core], axis=0) - object_colour).max() < 20
    scene_colour = np.median(present[frame][~scene.gt_visible[frame]], axis=0)
    assert np.abs(np.median(clean[core], axis=0) - scene_colour).max() > 20  # not the background
    # taken from a frame outside the 5-frame clip when one shows the object well
    assert not entry["source"]["start"] <= frame < entry["source"]["start"] + CLIP_FRAMES


def test_rebuild_continues_and_other_settings_are_refused(removal_data, tmp_path):
    root, _ = removal_data
    cfg = BuildConfig(num_frames=CLIP_FRAMES, max_side=WIDTH, reference_variants=0)
    first = build_triplets(root, tmp_path, cfg, LAYOUTS["simple"], limit=1)
    second = build_triplets(root, tmp_path, cfg, LAYOUTS["simple"])
    assert first.written == ["clip0"] and second.written == ["clip1"]
    assert any("already" in s for s in second.skipped)
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["clip0", "clip1"]
    assert json.loads(lines[0])["references"] == ["samples/clip0/reference.png"]
    with pytest.raises(InsertAnywhereError, match="other settings"):
        build_triplets(root, tmp_path, BuildConfig(num_frames=9, max_side=WIDTH), LAYOUTS["simple"])


def test_clips_per_video_and_degradation(removal_data, tmp_path):
    from insertanywhere.training.degrade import Degradation

    root, scenes = removal_data
    cfg = BuildConfig(num_frames=CLIP_FRAMES, max_side=WIDTH, clips_per_video=2, reference_variants=1,
                      degrade=Degradation(prob=1.0))
    result = build_triplets(root, tmp_path, cfg, LAYOUTS["simple"], limit=1)
    assert result.written == ["clip0_00000", "clip0_00004"]
    entry = TripletDataset(tmp_path).entries[1]
    assert entry["source"]["start"] == 4 and entry["degradation"]
    inputs, _ = read_video(tmp_path / entry["input"])
    clean = scenes["clip0"].frames[5:9]
    assert np.abs(inputs[1:].astype(int) - clean).mean() > 1.0  # the input was degraded


# ----------------------------------------------------------------------------- reference ranking


def colour_embedder(images):
    """Mean colour of the non-white pixels, as a 'feature' (a stand-in with known behaviour)."""
    feats = []
    for img in images:
        fg = img.reshape(-1, 3)[img.reshape(-1, 3).min(axis=1) < 245].astype(float)
        f = fg.mean(axis=0) - 128.0 if len(fg) else np.zeros(3)
        feats.append(f / (np.linalg.norm(f) + 1e-9))
    return np.stack(feats)


def test_choose_reference_ranks_by_similarity_to_the_clip_object():
    def blob(colour):
        img = np.full((16, 16, 3), 255, np.uint8)
        img[4:12, 4:12] = colour
        return img

    candidates = [("blue", blob((30, 30, 220))), ("red", blob((220, 30, 30))), ("green", blob((30, 220, 30)))]
    clip = [blob((200, 40, 40)), blob((230, 20, 50))]
    best, score = choose_reference(candidates, clip, colour_embedder)
    assert candidates[best][0] == "red" and score > 0.95
    assert choose_reference(candidates, clip, None) == (0, None)


def test_supplied_reference_images_are_ranked(removal_data, tmp_path):
    root, scenes = removal_data
    refs = tmp_path / "refs" / "clip0"
    refs.mkdir(parents=True)
    scene = scenes["clip0"]
    cv2.imwrite(str(refs / "good.png"), scene.object_ref[..., ::-1])
    decoy = np.full_like(scene.object_ref, 255)
    decoy[20:-20, 20:-20] = (30, 200, 30)
    cv2.imwrite(str(refs / "decoy.png"), decoy[..., ::-1])
    cfg = BuildConfig(num_frames=CLIP_FRAMES, max_side=WIDTH, reference_variants=0)
    build_triplets(root, tmp_path / "ds", cfg, LAYOUTS["simple"], reference_dir=tmp_path / "refs",
                   embedder=colour_embedder, limit=1)
    entry = TripletDataset(tmp_path / "ds").entries[0]
    assert entry["reference"]["source"] != "image decoy.png"
    assert entry["reference"]["score"] > 0.8


def test_local_vision_model_embeds(tmp_path):
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    Dinov2Model(Dinov2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                             image_size=28, patch_size=14)).save_pretrained(tmp_path)
    BitImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}).save_pretrained(tmp_path)
    embed = load_vision_embedder(tmp_path)
    images = [np.full((20, 30, 3), v, np.uint8) for v in (0, 128, 255)]
    feats = embed(images)
    assert feats.shape == (3, 16)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    assert np.allclose(embed(images[:1]), feats[:1], atol=1e-5)
    with pytest.raises(InsertAnywhereError, match="config.json"):
        load_vision_embedder(tmp_path / "missing")


def test_mask_video_helper_round_trip(tmp_path):
    scene = write_removal_clip(tmp_path / "c", "occluder", seed=5)
    frames, _ = read_video(tmp_path / "c" / "mask.mp4")
    from insertanywhere.training.triplets import mask_from_frames

    decoded = mask_from_frames(frames)
    iou = (decoded & scene.gt_visible).sum() / (decoded | scene.gt_visible).sum()
    assert iou > 0.9
    with pytest.raises(InsertAnywhereError, match="not a black-and-white mask"):
        mask_from_frames(scene.frames, "overlay.mp4")
    assert mask_video(scene.gt_visible).dtype == np.uint8
