"""The memory model and budget of the mask pipeline (issue #11, point 2): the estimate, where the
budget comes from, the knob values a refusal names, and one real run measured against the estimate."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from insertanywhere import memory
from insertanywhere.errors import InsertAnywhereError
from insertanywhere.video import snap_size

ROOT = Path(__file__).resolve().parents[2]


def test_estimate_is_linear_in_frames_and_grows_with_pixels_and_inputs():
    e = memory.estimate_peak_bytes
    step = e(200, 480, 832) - e(100, 480, 832)
    assert step > 0 and e(300, 480, 832) - e(200, 480, 832) == pytest.approx(step, abs=2)
    assert e(100, 960, 1664) > 2 * (e(100, 480, 832) - memory.BASE_BYTES)  # 4x the pixels (the flow grid is capped)
    assert e(100, 480, 832, with_depth=True) > e(100, 480, 832)
    assert e(100, 480, 832, comfy=True) > e(100, 480, 832, with_depth=True)
    # the runs: 600 frames of 832x480 took 7.0 GiB before; the model stays well under that now
    assert 2 * memory.GIB < e(600, 480, 832) < 7 * memory.GIB


def test_budget_from_flag_environment_or_available_memory(monkeypatch):
    monkeypatch.delenv(memory.ENV_BUDGET, raising=False)
    assert memory.budget(2.5).limit == int(2.5 * memory.GIB)
    monkeypatch.setenv(memory.ENV_BUDGET, "3")
    assert memory.budget(None).limit == 3 * memory.GIB
    assert memory.budget(1.0).limit == memory.GIB  # the flag wins over the environment
    monkeypatch.delenv(memory.ENV_BUDGET)
    monkeypatch.setattr(memory, "available_bytes", lambda: 10 * memory.GIB)
    auto = memory.budget(0)
    assert auto.limit == int(10 * memory.GIB * memory.MEMORY_FRACTION) and "available" in auto.source
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    assert memory.budget(0).limit is None and memory.budget(0).fits(10**6, 4000, 4000)
    with pytest.raises(InsertAnywhereError, match=">= 0"):
        memory.budget(float("nan"))


def test_available_memory_is_read():
    free = memory.available_bytes()
    assert free is None or free > 0


def test_refusal_names_values_that_fit_and_are_the_largest_that_do():
    plan = memory.Budget(int(1.5 * memory.GIB), "test")
    sel = memory.Selection(start=0, stride=1, frame_cap=600, max_side=832, fit="crop")
    source, count = (1080, 1920), 900
    size = snap_size(*source, 16, 832)
    assert not plan.fits(600, *size)
    message = str(memory.refuse(plan, sel, 600, size, source, count, "'v.mp4'"))
    knobs = {k: int(v) for k, v in re.findall(r"(frame_cap|stride|start|max_side) (\d+) \(", message)}
    assert set(knobs) == {"frame_cap", "stride", "start", "max_side"}, message
    assert plan.fits(knobs["frame_cap"], *size) and not plan.fits(knobs["frame_cap"] + 1, *size)
    strided = memory.Selection(0, knobs["stride"], 600).frames(count)
    assert plan.fits(strided, *size) and not plan.fits(memory.Selection(0, knobs["stride"] - 1, 600).frames(count),
                                                        *size)
    assert plan.fits(memory.Selection(knobs["start"], 1, 600).frames(count), *size)
    side = snap_size(*source, 16, knobs["max_side"])
    assert plan.fits(600, *side) and not plan.fits(600, *snap_size(*source, 16, knobs["max_side"] + 16))


def test_selection_counts_frames_without_trusting_a_missing_count():
    assert memory.Selection(10, 3, 81).frames(100) == 30
    assert memory.Selection(0, 1, 81).frames(1000) == 81
    assert memory.Selection(0, 1, 81).frames(0) == 81   # no count in the container: the cap
    assert memory.Selection(0, 1, None).frames(0) is None
    assert memory.Selection(200, 1, 81).frames(100) == 0


# Selection field -> (bad values, words of the valid range the error must give)
BAD_SELECTION = {
    "start": ([-1, 1.0, None, "0", True], "start >= 0"),
    "stride": ([0, -2, 2.5, None, False], "stride >= 1"),
    "frame_cap": ([0, -1, 81.0, "81"], "frame_cap >= 1 or None"),
    "max_side": ([-16, 832.0, None], "max_side >= 0 (0 keeps the source size)"),
    "fit": (["zoom", "", None, "CROP"], "use one of crop, resize, none"),
    "multiple": ([0, -16, 16.0, None], "multiple >= 1"),
    "frame_count": (["4k", "", None], "use one of any, 4k+1"),
}


def test_every_selection_field_has_bad_values_listed():
    assert set(BAD_SELECTION) == {field.name for field in dataclasses.fields(memory.Selection)}


@pytest.mark.parametrize("name", sorted(BAD_SELECTION))
def test_bad_selection_values_name_the_knob_and_the_range(name):
    values, valid = BAD_SELECTION[name]
    for value in values:
        with pytest.raises(InsertAnywhereError) as caught:
            memory.Selection(**{name: value})
        message = str(caught.value)
        assert (f"{name}={value!r}" in message or f"{name} {value!r}" in message) and valid in message, message


def test_good_selection_values_are_kept():
    edge = memory.Selection(start=np.int64(5), stride=1, frame_cap=1, max_side=0, fit="none", multiple=1,
                            frame_count="4k+1")
    assert (edge.start, edge.frame_cap, edge.fit, edge.frame_count) == (5, 1, "none", "4k+1")
    assert memory.Selection(frame_cap=None).frame_cap is None


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmHWM from /proc")
def test_a_real_run_stays_under_the_estimate(tmp_path):
    """Peak RSS of a whole `insertanywhere masks` process (65 frames of 320x192) against the model."""
    from insertanywhere.sample_scene import make_scene
    from insertanywhere.video import read_video, write_video

    scene = make_scene("static", num_frames=33, width=320, height=192, seed=2)
    bundle = scene.write_bundle(tmp_path / "bundle")
    frames, fps = read_video(bundle / "scene.mp4")
    video = write_video(tmp_path / "long.mp4", np.concatenate([frames, frames[-2::-1]]), fps)  # 65 frames
    (tmp_path / "placement.json").write_text(json.dumps(scene.placement))
    peak_file = tmp_path / "peak"
    args = ["masks", "--video", str(video), "--object-mesh", str(bundle / "object.ply"), "--placement",
            str(tmp_path / "placement.json"), "--out", str(tmp_path / "out"), "--frame-cap", "65"]
    # VmHWM of the CLI process itself, read at its exit (ru_maxrss of a child also counts the parent's
    # pages copied at fork time, and this test process is larger than the run)
    wrapper = ("import atexit, os, runpy, sys\n"
               "def hwm():\n"
               "    line = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
               "    open(os.environ['IA_PEAK_FILE'], 'w').write(str(int(line.split()[1]) * 1024))\n"
               "atexit.register(hwm)\n"
               "sys.argv = ['insertanywhere'] + sys.argv[1:]\n"
               "runpy.run_module('insertanywhere.cli', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", wrapper, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "IA_PEAK_FILE": str(peak_file)})
    assert done.returncode == 0, done.stderr[-2000:]
    peak = int(peak_file.read_text())
    estimate = memory.estimate_peak_bytes(65, 192, 320)
    assert len(list((tmp_path / "out" / "visible").glob("*.png"))) == 65
    assert 0.5 * estimate < peak <= estimate, (peak / 2**20, estimate / 2**20)
