"""Issue #11 point 5: the CLI prints every warning of a run on stderr and ends with a summary line;
point 6: bad K / depth / JSON end in one clear error line, never a traceback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from insertanywhere import cli
from insertanywhere.sample_scene import make_scene

FRAMES, WIDTH, HEIGHT = 9, 160, 96


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    scene = make_scene("static", num_frames=FRAMES, width=WIDTH, height=HEIGHT, seed=0)
    folder = scene.write_bundle(tmp_path_factory.mktemp("cli") / "scene")
    (folder / "placement.json").write_text(json.dumps(scene.placement))
    (folder / "K.json").write_text(json.dumps({"K": np.asarray(scene.K, np.float64).tolist()}))
    return scene, folder


def _masks(folder, out, *extra) -> list[str]:
    return ["masks", "--video", str(folder / "scene.mp4"), "--object-mesh", str(folder / "object.ply"),
            "--placement", str(folder / "placement.json"), "--out", str(out), *map(str, extra)]


def _stderr_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    return [line.split("\r")[-1] for line in err.splitlines() if line.split("\r")[-1].strip()]


def test_every_warning_is_printed_and_summed_up(bundle, tmp_path, capsys):
    scene, folder = bundle
    depth = scene.depth.astype(np.float32).copy()
    depth[:, 10:14, 10:14] = np.nan  # filled from neighbours, with a warning
    np.savez(tmp_path / "holes.npz", depth=depth)
    code = cli.main(_masks(folder, tmp_path / "out", "--depth", tmp_path / "holes.npz",
                           "--intrinsics", folder / "K.json"))
    lines = _stderr_lines(capsys)
    assert code == 0
    printed = [line.split("warning: ", 1)[1] for line in lines if line.startswith("insertanywhere masks: warning: ")]
    track = json.loads((tmp_path / "out" / "track.json").read_text())
    assert printed == track["warnings"] and len(printed) >= 1
    assert any(w.startswith(f"depth: filled {FRAMES * 16} invalid pixels in {FRAMES} frames") for w in printed)
    count = len(printed)
    assert lines[-1] == f"insertanywhere masks: {count} warning{'s' if count > 1 else ''}: " + "; ".join(printed)


def test_a_run_without_warnings_says_so(bundle, tmp_path, capsys):
    _, folder = bundle
    # exact depth and K, the pose kept fixed in the world (static scene): nothing to warn about
    code = cli.main(_masks(folder, tmp_path / "out", "--depth", folder / "depth.npz", "--intrinsics", folder / "K.json",
                           "--no-propagation"))
    lines = _stderr_lines(capsys)
    track = json.loads((tmp_path / "out" / "track.json").read_text())
    assert code == 0 and track["warnings"] == []
    assert lines[-1] == "insertanywhere masks: no warnings"
    assert not any("warning: " in line for line in lines)


@pytest.mark.parametrize("K, message", [
    ([[200, 0, 79.5], [0, 200, 47.5], [0, 0, 0]], r"are not of the form .*last row is \[0\.0, 0\.0, 0\.0\]"),
    ([[200, 0, 900], [0, 200, 47.5], [0, 0, 1]], r"principal point at \(900, 47\.5\), outside the 160x96 frames"),
    ([[1e12, 0, 79.5], [0, 1e12, 47.5], [0, 0, 1]], r"field of view of 9\.17e-09 degrees"),
])
def test_bad_k_is_one_error_line(bundle, tmp_path, capsys, K, message):
    import re

    _, folder = bundle
    (tmp_path / "K.json").write_text(json.dumps(K))  # the bare form is accepted as well as {"K": ...}
    code = cli.main(_masks(folder, tmp_path / "out", "--intrinsics", tmp_path / "K.json"))
    lines = _stderr_lines(capsys)
    errors = [line for line in lines if line.startswith("insertanywhere masks: error: ")]
    assert code == 2 and len(errors) == 1 and re.search(message, errors[0]), lines[-3:]
    assert not any("pose not found" in line or "Traceback" in line for line in lines)
    assert not (tmp_path / "out").exists()
