"""Issue #11, points 5 and 6: no silent wrong result, and messages instead of Python internals.

Each row does what a user did (CLI-style calls of the core: run_masks, load_depth, load_intrinsics,
parse_placement, masks_from_scene) in a fresh folder and states the message it must get. The
inputs are made here from the synthetic sample scene; `_bundle()` renders one small scene bundle
once per process (the rows only read it).
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import numpy as np

from insertanywhere.jsontext import parse_json
from insertanywhere.masks.object3d import load_mesh
from insertanywhere.masks.options import MaskOptions
from insertanywhere.masks.pipeline import K_EXAMPLE, load_depth, load_intrinsics, load_placement, masks_from_scene, \
    run_masks
from insertanywhere.sample_scene import make_scene
from table import Case

FRAMES, WIDTH, HEIGHT = 9, 160, 96
FOCAL = 0.5 * WIDTH / np.tan(np.radians(30))  # 60 degrees horizontal
GOOD_K = [[FOCAL, 0, (WIDTH - 1) / 2], [0, FOCAL, (HEIGHT - 1) / 2], [0, 0, 1]]


@functools.lru_cache(maxsize=1)
def _scene():
    return make_scene("static", num_frames=FRAMES, width=WIDTH, height=HEIGHT, seed=0)


@functools.lru_cache(maxsize=1)
def _bundle() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ia_messages_")) / "scene"
    _scene().write_bundle(folder)
    (folder / "placement.json").write_text(json.dumps(_scene().placement))
    return folder


def _run(tmp: Path, **kwargs):
    """`insertanywhere masks` on the sample bundle with some inputs replaced; returns its warnings."""
    bundle = _bundle()
    args = dict(placement=bundle / "placement.json", object_mesh=bundle / "object.ply")
    args.update(kwargs)
    return run_masks(bundle / "scene.mp4", out=None, **args).warnings


def _depth_file(tmp: Path, **arrays) -> Path:
    path = tmp / "depth.npz"
    np.savez(path, **arrays)
    return path


def _k_file(tmp: Path, K) -> Path:
    path = tmp / "K.json"
    path.write_text(K if isinstance(K, str) else json.dumps({"K": K}))
    return path


def _depth_run(tmp: Path, **arrays):
    return _run(tmp, depth=_depth_file(tmp, **arrays))


def _k_run(tmp: Path, K):
    return _run(tmp, intrinsics=_k_file(tmp, K))


def _placed(tmp: Path, **placement):
    """The stages after reconstruction on the sample's exact scene (no reconstruction needed)."""
    scene = _scene()
    plan = {**scene.placement, **placement}
    return masks_from_scene(scene.to_scene_record(), load_mesh(_bundle() / "object.ply"), load_placement(plan)).warnings


def _panned_away(tmp: Path):
    """The camera slides sideways until the object leaves the view after the first frames."""
    scene = _scene()
    record = scene.to_scene_record()
    poses = record.camera_from_world.astype(np.float64).copy()
    poses[:, 0, 3] += np.linspace(0, 40.0, FRAMES) * (np.arange(FRAMES) > 1)
    record.camera_from_world = poses.astype(np.float32)
    return masks_from_scene(record, load_mesh(_bundle() / "object.ply"), load_placement(scene.placement),
                            MaskOptions(propagation=False)).warnings


def _npy(tmp: Path):
    path = tmp / "depth.npy"
    np.save(path, 1.0 + np.random.default_rng(0).random((FRAMES, HEIGHT, WIDTH)))
    return load_depth(path)


def _nested_file(tmp: Path, depth: int) -> Path:
    path = tmp / "placement.json"
    path.write_text("[" * depth + "]" * depth)
    return path


def _ramp():
    return np.broadcast_to(np.linspace(1.0, 4.0, HEIGHT)[:, None], (FRAMES, HEIGHT, WIDTH)).copy()


def _all_nan():
    return np.full((FRAMES, HEIGHT, WIDTH), np.nan)


def _occluders(text: str):
    from insertanywhere.insertion.sam2_refine import parse_occluder_prompts

    parse_occluder_prompts(text, FRAMES, (HEIGHT, WIDTH))


def _k_forms(tmp: Path):
    bare = load_intrinsics(json.dumps(GOOD_K))
    wrapped = load_intrinsics(json.dumps({"K": GOOD_K}))
    from_file = load_intrinsics(_k_file(tmp, GOOD_K))
    assert np.array_equal(bare, wrapped) and np.array_equal(bare, from_file)
    return None


CASES = [
    # --- point 5: silent wrong results -------------------------------------------------------------
    Case("depth: metric depth constant over the frame (every pixel 2.0)",
         lambda tmp: _depth_run(tmp, depth=np.full((FRAMES, HEIGHT, WIDTH), 2.0)),
         r"^error: depth of frame 0 in '.*depth\.npz' is \(nearly\) constant .*carries no depth: a valid 'depth' map"),
    Case("depth: metric depth varying by 0.1% (2.000..2.002)",
         lambda tmp: _depth_run(tmp, depth=2.0 + 0.002 * np.random.default_rng(1).random((FRAMES, HEIGHT, WIDTH))),
         r"^error: depth of frame 0 .*\(nearly\) constant .*spread under 1%"),
    Case("depth: disparity varying by 0.5% (0.5..0.5025)",
         lambda tmp: _depth_run(tmp, disparity=0.5 + 0.0025 * np.random.default_rng(2).random((FRAMES, HEIGHT, WIDTH))),
         r"^error: disparity of frame 0 .*\(nearly\) constant .*a valid 'disparity' map is finite relative inverse"),
    Case("depth: every pixel NaN",
         lambda tmp: _depth_run(tmp, depth=_all_nan()),
         r"^error: depth of frame 0 in '.*depth\.npz' is 100% invalid \(NaN, inf, or not positive\).*camera z > 0"),
    Case("depth: disparity (larger = nearer, negative values) saved under key 'depth'",
         lambda tmp: _depth_run(tmp, depth=-_ramp()),
         r"^error: depth of frame 0 .*100% invalid.*save them under key 'disparity'"),
    Case("depth: inf in one whole frame of disparity",
         lambda tmp: _depth_run(tmp, disparity=np.where(np.arange(FRAMES)[:, None, None] == 3, np.inf, 1 / _ramp())),
         r"^error: disparity of frame 3 .*100% invalid \(NaN, inf\)"),
    Case("K: principal point outside the image (cx = 3 x width)",
         lambda tmp: _k_run(tmp, _with_k_cx(3 * WIDTH)),
         r"^error: Intrinsics K put the principal point at \(480, 47\.5\), outside the 160x96 frames.*another "
         r"resolution"),
    Case("K: fx = fy = 1e12 (a focal in the wrong unit)",
         lambda tmp: _k_run(tmp, _with_focal(1e12)),
         r"^error: Intrinsics K give a horizontal field of view of 9\.17e-09 degrees.*1 to 170 degrees"),
    Case("K: fx = fy = 0.01 (field of view near 180 degrees)",
         lambda tmp: _k_run(tmp, _with_focal(0.01)),
         r"^error: Intrinsics K give a horizontal field of view of 180 degrees.*1 to 170"),
    Case("K: singular (last row [0, 0, 0])",
         lambda tmp: _k_run(tmp, _with_row2([0, 0, 0])),
         r"^error: The intrinsics in '.*K\.json' are not of the form \[\[fx, 0, cx\], \[0, fy, cy\], \[0, 0, 1\]\].*"
         r"last row is \[0\.0, 0\.0, 0\.0\]"),
    Case("K: transposed ([[fx, 0, 0], [0, fy, 0], [cx, cy, 1]])",
         lambda tmp: _k_run(tmp, np.array(GOOD_K).T.tolist()),
         r"^error: The intrinsics in .* are not of the form .*transposed"),
    Case("K: fx and fy 30% apart (non-square pixels)",
         lambda tmp: _k_run(tmp, _with_fy(1.3 * FOCAL)),
         r"^error: The intrinsics in .* have fx = .* and fy = .*, 23% apart; the reconstruction assumes square pixels"),
    Case("K: skew 5 px",
         lambda tmp: load_intrinsics(_with_skew(5.0)),
         r"^error: The intrinsics have a skew K\[0\]\[1\] = 5"),
    Case("placement: height_px 1e-6 (object in no frame)",
         lambda tmp: _placed(tmp, height_px=1e-6),
         r"^error: height_px is 1e-06: an object under 2 pixels tall covers no pixel of the 160x96 frames"),
    Case("placement: height_px 1e5 on 96-pixel frames",
         lambda tmp: _placed(tmp, height_px=1e5),
         r"^error: height_px is 100000, 1042 times the frame height \(96 px\)"),
    Case("placement: camera pans away so the object is in 2 of 9 frames",
         _panned_away,
         r"^warning: the object is visible in only 2 of 9 frames \(frames 0\.\.1\)"),
    # --- point 6: messages instead of Python internals ---------------------------------------------
    Case("depth: a .npy file given as depth",
         _npy,
         r"^error: Depth file '.*depth\.npy' is a \.npy, a single array without a name.*numpy\.savez\('depth\.npz', "
         r"depth=maps\)"),
    Case("placement: JSON text nested 100000 levels deep",
         lambda tmp: load_placement("{" + '"a":[' * 100000),
         r"^error: The placement is nested more than 32 levels deep; write it like \{\"anchor\""),
    Case("placement: JSON file nested 5000 levels deep (CLI --placement)",
         lambda tmp: _run(tmp, placement=_nested_file(tmp, 5000)),
         r"^error: The placement is nested more than 32 levels deep"),
    Case("placement: anchor with 100000 numbers",
         lambda tmp: load_placement(json.dumps({"anchor": [0] * 100000, "height_px": 30})),
         r"^error: Placement 'anchor' is \[0, 0, 0, .{60,80}\.\.\. \(300000 characters\); it must be a list of 2 "
         r"numbers\.$"),
    Case("placement: 2 MB of JSON text",
         lambda tmp: load_placement('{"anchor": [1, 2], "height_px": 3, "pad": "' + "x" * (2 << 20) + '"}'),
         r"^error: The placement is 2097\d+ characters long, more than the 1048576 allowed"),
    Case("K: file nested 5000 levels deep (CLI --intrinsics)",
         lambda tmp: load_intrinsics(_k_file(tmp, "[" * 5000 + "]" * 5000)),
         r"^error: Intrinsics file '.*K\.json' is nested more than 32 levels deep; write it like \{\"K\""),
    Case("SAM2 occluder prompts widget nested 5000 levels deep",
         lambda tmp: _occluders("[" * 5000),
         r"^error: The occluder prompt text is nested more than 32 levels deep; write it like \[\{\"frame\": 0"),
    Case("K: the CLI's {\"K\": ...} form, the bare 3x3 list and a K.json give the same K",
         _k_forms, r"^ok$"),
    Case("K: intrinsics widget text 'fx=500, cx=320' (not JSON)",
         lambda tmp: load_intrinsics(parse_json("fx=500, cx=320", "The intrinsics widget", K_EXAMPLE)),
         r"^error: The intrinsics widget is not valid JSON \(Expecting value at line 1 column 1\); write it like "
         r"\{\"K\": \[\[500, 0, 320\]"),
    Case("K: {\"intrinsics\": [[...]]} (wrong key)",
         lambda tmp: load_intrinsics({"intrinsics": GOOD_K}),
         r"^error: The intrinsics have keys \['intrinsics'\]; give the 3x3 matrix under key \"K\""),
    Case("K: {\"K\": \"500\"} (a string, not a matrix)",
         lambda tmp: load_intrinsics('{"K": "500"}'),
         r"^error: The intrinsics must be a finite 3x3 matrix"),
    Case("K: {\"K\": [[\"a\"]]} (not numbers)",
         lambda tmp: load_intrinsics('{"K": [["a", 0, 1], [0, 1, 1], [0, 0, 1]]}'),
         r"^error: The intrinsics are not a 3x3 matrix of numbers"),
]


def _with_k_cx(cx: float) -> list:
    K = np.array(GOOD_K, np.float64)
    K[0, 2] = cx
    return K.tolist()


def _with_focal(focal: float) -> list:
    K = np.array(GOOD_K, np.float64)
    K[0, 0] = K[1, 1] = focal
    return K.tolist()


def _with_fy(fy: float) -> list:
    K = np.array(GOOD_K, np.float64)
    K[1, 1] = fy
    return K.tolist()


def _with_row2(row) -> list:
    K = np.array(GOOD_K, np.float64)
    K[2] = row
    return K.tolist()


def _with_skew(skew: float) -> list:
    K = np.array(GOOD_K, np.float64)
    K[0, 1] = skew
    return K.tolist()
