"""The held-out suite's sample-scene kinds: each shows what its name says, with exact ground truth.

(Flow, depth reprojection through the poses, placement and mask consistency are checked for every
kind in test_sample_scene.py.)"""

import json
from functools import lru_cache

import numpy as np
import pytest

from insertanywhere.masks.geometry import rotation_angle_deg
from insertanywhere.sample_scene import SUITE_KINDS, make_scene

OCCLUDER_KINDS = ("one_occluder", "crossing_occluders", "occluder_stops")


@lru_cache(maxsize=None)
def scene(kind, seed=0):
    return make_scene(kind, num_frames=17, width=160, height=96, seed=seed)


def occluded_share(s):
    """Per frame, the share of the object's amodal area that is hidden."""
    return 1.0 - s.gt_visible.sum(axis=(1, 2)) / s.gt_amodal.sum(axis=(1, 2))


@pytest.mark.parametrize("kind", SUITE_KINDS)
def test_only_occluder_kinds_hide_the_object(kind):
    hidden = occluded_share(scene(kind))
    assert hidden[0] == 0.0  # the user places the object where it is seen
    if kind in OCCLUDER_KINDS:
        assert (hidden > 0.1).sum() >= 3
        assert (hidden == 0.0).sum() >= 3  # free before and after
    else:
        assert hidden.max() == 0.0


def walker_ids(s):
    return [i for i, name in enumerate(s.world.names) if name == "walker"]


@pytest.mark.parametrize("seed", [0, 1])
def test_crossing_walkers_hide_the_object_at_different_times_and_depths(seed):
    s = scene("crossing_occluders", seed)
    hidden = s.gt_amodal & ~s.gt_visible
    first_frames, depths = [], []
    for pid in walker_ids(s):
        hides = np.array([(hidden[t] & (s.hit_prim[t] == pid)).any() for t in range(s.num_frames)])
        if hides.any():
            first_frames.append(int(np.argmax(hides)))
            t = first_frames[-1]
            depths.append(float(np.median(s.depth[t][hidden[t] & (s.hit_prim[t] == pid)])))
    assert len(walker_ids(s)) >= 2 and len(first_frames) >= 2
    assert len(set(first_frames)) == len(first_frames)
    assert np.ptp(depths) > 0.1  # metres between the nearest and the farthest walker


def test_occluder_stops_stands_still_in_front_of_the_object():
    s = scene("occluder_stops")
    pid = walker_ids(s)[0]
    poses = s.world.poses[pid]
    still = np.array([np.abs(poses[t + 1] - poses[t]).max() < 1e-12 for t in range(s.num_frames - 1)])
    assert still.sum() >= 0.2 * s.num_frames
    hidden = occluded_share(s)
    assert (hidden[1:][still] > 0.1).mean() > 0.8  # while it stands, it hides the object


def test_zoom_changes_the_focal_length_and_the_bundle_says_so(tmp_path):
    s = make_scene("zoom", num_frames=9, width=96, height=64, seed=1)
    Ks = s.K_per_frame
    assert Ks.shape == (9, 3, 3) and np.array_equal(Ks[0], s.K)
    span = Ks[:, 0, 0].max() / Ks[:, 0, 0].min()
    assert 1.45 < span < 1.95
    assert np.allclose(Ks[:, 0, 0], Ks[:, 1, 1]) and np.allclose(Ks[:, :2, 2], Ks[0, :2, 2])
    assert np.all(np.diff(Ks[:, 0, 0]) > 0) or np.all(np.diff(Ks[:, 0, 0]) < 0)  # one way over the clip
    meta = json.loads((s.write_bundle(tmp_path / "zoom") / "scene.json").read_text())
    assert np.allclose(meta["intrinsics_per_frame"], Ks) and np.allclose(meta["intrinsics"], Ks[0])
    assert "intrinsics_per_frame" not in scene("orbit").scene_json()


def support_motion(s):
    """(translation of the object's base in metres [F, 3], turn in degrees [F]) from frame 0."""
    poses = s.object_world_from_mesh
    scale = np.linalg.norm(poses[0, :3, 0])
    turn = [rotation_angle_deg(p[:3, :3] @ poses[0, :3, :3].T / scale ** 2) for p in poses]
    return poses[:, :3, 3] - poses[0, :3, 3], np.array(turn)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moving_supports_move_as_their_kind_says(seed):
    move, turn = support_motion(scene("sliding_support", seed))
    assert np.linalg.norm(move[-1]) > 0.12 and turn.max() < 1e-6 and np.abs(move[:, 2]).max() < 1e-9
    move, turn = support_motion(scene("turntable", seed))
    assert turn[-1] > 50.0 and np.abs(move[:, 2]).max() < 1e-9  # turns in place, off-centre so the base moves
    assert np.linalg.norm(move[-1]) > 0.01
    move, turn = support_motion(scene("carried", seed))
    assert move[:, 2].max() > 0.09 and np.linalg.norm(move[-1, :2]) > 0.12
    for kind in ("sliding_support", "turntable", "carried"):
        s = scene(kind, seed)
        board = s.world.names.index("board")
        assert s.world.dynamic[board] and (s.hit_prim == board).any(axis=(1, 2)).all()


def test_low_texture_floor_is_plain():
    def floor_contrast(s):
        floor = s.world.room_face_ids[4]
        grey = s.frames[0].mean(axis=-1)[s.hit_prim[0] == floor]
        return grey.std() / grey.mean()

    plain = floor_contrast(scene("low_texture"))
    assert plain < 0.05 and floor_contrast(scene("orbit")) > 2.0 * plain


def test_noise_blur_frames_are_noisy():
    def high_pass(s):
        from scipy.ndimage import median_filter

        grey = s.frames.mean(axis=-1)
        return np.abs(grey - median_filter(grey, size=(1, 3, 3))).mean()

    assert high_pass(scene("noise_blur")) > 2.0 * high_pass(scene("handheld"))


@pytest.mark.parametrize("kind", ["pan", "crossing_occluders", "carried"])
def test_each_seed_is_a_different_scene(kind):
    a, b = scene(kind, 0), scene(kind, 1)
    assert a.placement["height_px"] != b.placement["height_px"]
    assert np.abs(a.camera_from_world - b.camera_from_world).max() > 0.05
    assert a.world.room_half[0] != b.world.room_half[0]
