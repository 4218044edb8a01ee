"""`insertanywhere masks` with the Load Video node's knobs (--start, --stride, --frame-cap, --max-side,
--frame-count): the right frames, fitted, with the placement, K and depth fitted alongside (issue #11)."""

from __future__ import annotations

import json
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from insertanywhere import cli
from insertanywhere.sample_scene import make_scene
from insertanywhere.video import fit_frame, fit_intrinsics, fit_point, snap_size

FRAMES, WIDTH, HEIGHT = 23, 320, 192


@lru_cache(maxsize=None)
def _scene():
    return make_scene("static", num_frames=FRAMES, width=WIDTH, height=HEIGHT, seed=1)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def test_masks_cli_selects_and_fits_like_the_node(tmp_path):
    s = _scene()
    folder = s.write_bundle(tmp_path / "bundle")
    (tmp_path / "placement.json").write_text(json.dumps(s.placement))
    (tmp_path / "K.json").write_text(json.dumps({"K": np.asarray(s.K).tolist()}))
    out = tmp_path / "out"
    code = cli.main(["masks", "--video", str(folder / "scene.mp4"), "--object-mesh", str(folder / "object.ply"),
                     "--placement", str(tmp_path / "placement.json"), "--depth", str(folder / "depth.npz"),
                     "--intrinsics", str(tmp_path / "K.json"), "--out", str(out), "--start", "2", "--stride", "2",
                     "--frame-cap", "10", "--max-side", "160", "--frame-count", "4k+1"])
    assert code == 0
    used = list(range(2, 2 + 2 * 9, 2))  # cap 10, then 4k+1 -> 9 frames: 2, 4, ..., 18
    masks = sorted((out / "visible").glob("*.png"))
    assert len(masks) == 9
    visible = np.stack([np.asarray(Image.open(p)) > 0 for p in masks])
    assert visible.shape[1:] == (96, 160)
    track = json.loads((out / "track.json").read_text())
    np.testing.assert_allclose(track["K"], fit_intrinsics(s.K, (HEIGHT, WIDTH), (96, 160)), rtol=1e-6)
    # the placement was given in source pixels: the object lands where the ground truth has it
    truth = np.stack([cv2.resize(s.gt_visible[t].astype(np.uint8), (160, 96), interpolation=cv2.INTER_AREA) > 0
                      for t in used])
    ious = [_iou(a, b) for a, b in zip(visible, truth) if b.any()]
    assert len(ious) >= 6 and np.mean(ious) > 0.8, ious


def test_max_frames_is_an_alias_of_frame_cap_and_defaults_match_the_node():
    args = cli.build_parser("masks").parse_args(
        ["masks", "--video", "v.mp4", "--object-mesh", "m.ply", "--placement", "p.json", "--out", "o",
         "--max-frames", "5"])
    assert args.frame_cap == 5
    defaults = cli.build_parser("masks").parse_args(
        ["masks", "--video", "v.mp4", "--object-mesh", "m.ply", "--placement", "p.json", "--out", "o"])
    assert (defaults.start, defaults.stride, defaults.frame_cap, defaults.fit) == (0, 1, 81, "crop")
    assert defaults.memory_budget == 0


def test_fit_point_and_intrinsics_follow_fit_frame():
    source = (180, 300)
    for size, mode in (((96, 160), "crop"), ((96, 160), "resize"), ((160, 160), "crop")):
        for u, v in ((40.0, 30.0), (250.0, 150.0), (150.0, 90.0)):
            expect = fit_point((u, v), source, size, mode)
            if not (4 <= expect[0] <= size[1] - 5 and 4 <= expect[1] <= size[0] - 5):
                continue  # cropped away
            img = np.zeros(source + (3,), np.float32)
            img[int(v) - 3:int(v) + 4, int(u) - 3:int(u) + 4] = 1.0  # a 7x7 spot centred on (u, v)
            fitted = fit_frame(img, size, mode)[..., 0]
            ys, xs = np.nonzero(fitted > 0.05)
            weights = fitted[ys, xs]
            centre = (np.average(xs, weights=weights), np.average(ys, weights=weights))
            assert abs(centre[0] - expect[0]) < 0.35 and abs(centre[1] - expect[1]) < 0.35, (size, mode, u, v)
    K = np.array([[200.0, 0, 149.5], [0, 200.0, 89.5], [0, 0, 1]])
    fitted = fit_intrinsics(K, source, (96, 160), "crop")
    assert fitted[0, 0] == fitted[1, 1]  # crop keeps square pixels
    assert snap_size(*source, 16, 160) == (96, 160)
