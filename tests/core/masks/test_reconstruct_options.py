"""ReconstructOptions (every knob checked, the error names it and its range), FlowField (shapes checked
on construction), timed() and the options reaching the reconstruction (issue #17 point 2)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from option_rules import assert_bad_values_refused, assert_every_field_listed

from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks.reconstruct import ReconstructOptions, reconstruct
from insertanywhere.masks.reconstruct.flow import FlowField, compute_flow
from insertanywhere.progress import timed
from insertanywhere.masks.reconstruct.spill import SpilledArray
from insertanywhere.sample_scene import make_scene

# option -> (bad values, words of the valid range the error must give)
BAD = {
    "flow_stride": ([0, -2, 65, 2.0, "4", True], "integer from 1 to 64"),
    "flow_preset": (["slow", "", None, "MEDIUM"], "one of fast, medium, ultrafast"),
    "refine_focal": ([1, "yes", 0.0], "True, False or None"),
    "ba_gaps": ([(), (0, 1), (1, -2), (1, 2.5), 3, "12", (1, 1001), (True,)], "non-empty tuple of integers"),
    "ba_points": ([7, 0, -1, 96.0, None], "integer >= 8"),
    "ba_iterations": ([0, -5, 2.5, None], "integer >= 1"),
    "depth_weight": ([0, -1.0, float("nan"), float("inf"), "3", None, True], "finite number > 0"),
    "motion_tolerance_px": ([0.0, -0.1, float("inf"), None], "finite number > 0"),
    "motion_relative": ([-0.01, float("nan"), None], "finite number >= 0"),
    "refine_depth": ([1, "no"], "True, False or None"),
    "polish": ([None, 1, "True"], "True or False"),
    "sharpen_px": ([-1, 65, 1.5, "2"], "integer from 0 to 64"),
    "seed": ([-1, 1.0, None, "0"], "integer >= 0"),
}


def test_every_option_has_bad_values_listed():
    assert_every_field_listed(ReconstructOptions, BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_option_values_name_the_option_and_the_range(name):
    assert_bad_values_refused(ReconstructOptions, name, *BAD[name])


def test_good_option_values_are_kept():
    edge = ReconstructOptions(flow_stride=64, flow_preset="ultrafast", refine_focal=False, ba_gaps=[1, 1000],
                              ba_points=8, ba_iterations=1, depth_weight=1e-3, motion_tolerance_px=1e-3,
                              motion_relative=0, refine_depth=True, polish=False, sharpen_px=0,
                              seed=np.int64(2 ** 40))
    assert edge.ba_gaps == (1, 1000) and isinstance(edge.ba_gaps, tuple)  # a list is kept as a tuple (hashable)
    assert edge.flow_stride == 64 and edge.sharpen_px == 0 and edge.motion_relative == 0
    assert ReconstructOptions(flow_stride=None, sharpen_px=None, refine_focal=None).flow_stride is None
    assert ReconstructOptions() == ReconstructOptions(ba_gaps=[1, 2, 4, 8])
    with pytest.raises(dataclasses.FrozenInstanceError):
        edge.seed = 3


def test_reconstruct_refuses_options_that_are_not_an_options_object():
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(InsertAnywhereError, match="options must be a ReconstructOptions"):
        reconstruct(frames, options={"seed": 1})
    with pytest.raises(TypeError):
        reconstruct(frames, seed=1)  # the knobs are no longer keyword arguments of reconstruct()


def test_options_reach_the_reconstruction():
    scene = make_scene("static", num_frames=6, width=128, height=96, seed=2)
    options = ReconstructOptions(flow_stride=4, flow_preset="fast", refine_focal=False, ba_iterations=2)
    record = reconstruct(scene.frames, depth=scene.depth, K=scene.K, options=options)
    assert record.flow_stride == 4 and record.flow_fwd.shape == (5, 24, 32, 2)
    assert record.provenance["flow_preset"] == "fast" and record.provenance["refine_focal"] is False
    assert record.provenance["bundle"]["iterations"] <= 2
    stages = ["flow", "chain", "bundle", "motion", "depth", "lines", "output", "total"]
    assert [k for k in record.timings if k != "bundle_static"] == stages
    assert all(v >= 0 for v in record.timings.values())
    assert record.timings["total"] >= sum(v for k, v in record.timings.items() if k != "total")


def test_timed_records_seconds_and_skips_a_failed_block():
    timings: dict[str, float] = {}
    with timed(timings, "work"):
        sum(range(10_000))
    assert list(timings) == ["work"] and 0 <= timings["work"] < 5
    with pytest.raises(RuntimeError):
        with timed(timings, "broken"):
            raise RuntimeError("stop")
    assert "broken" not in timings


def _flow(frames=4, h=6, w=8):
    fwd = np.zeros((frames - 1, h, w, 2), np.float32)
    valid = np.ones((frames - 1, h, w), bool)
    return dict(fwd=fwd, bwd=fwd.copy(), valid=valid, valid_bwd=valid.copy(), stride=2)


@pytest.mark.parametrize("field, bad, words", [
    ("fwd", np.zeros((3, 6, 8), np.float32), "fwd must be [F-1, H', W', 2]"),
    ("fwd", np.zeros((3, 6, 8, 3), np.float32), "fwd must be [F-1, H', W', 2]"),
    ("bwd", np.zeros((3, 6, 9, 2), np.float32), "bwd has shape (3, 6, 9, 2)"),
    ("bwd", np.zeros((2, 6, 8, 2), np.float32), "must match fwd's (3, 6, 8, 2)"),
    ("valid", np.ones((3, 6, 7), bool), "valid must be bool (3, 6, 8)"),
    ("valid", np.ones((3, 6, 8), np.uint8), "valid must be bool (3, 6, 8)"),
    ("valid_bwd", np.ones((2, 6, 8), bool), "valid_bwd must be bool (3, 6, 8)"),
    ("stride", 0, "stride must be an integer >= 1"),
    ("stride", 1.5, "stride must be an integer >= 1"),
    ("stride", True, "stride must be an integer >= 1"),
])
def test_flow_field_checks_shapes(field, bad, words):
    with pytest.raises(InsertAnywhereError) as caught:
        FlowField(**{**_flow(), field: bad})
    assert f"FlowField.{words}" in str(caught.value) or words in str(caught.value), str(caught.value)


def test_flow_field_from_compute_flow_on_disk_and_in_memory():
    rng = np.random.default_rng(1)
    gray = np.repeat(rng.integers(0, 255, (1, 40, 64), dtype=np.uint8), 3, axis=0)
    memory = compute_flow(gray, 2)
    assert memory.stride == 2 and memory.fwd.shape == (2, 20, 32, 2) and memory.valid_bwd.shape == (2, 20, 32)
    spilled = compute_flow(gray, 2, spill=True)
    assert isinstance(spilled.fwd, SpilledArray)
    np.testing.assert_array_equal(spilled.fwd[0:2], memory.fwd)  # the same values, bit for bit
    np.testing.assert_array_equal(spilled.bwd[1], memory.bwd[1])
    assert np.abs(memory.fwd).max() < 0.5  # identical frames: no motion
    spilled.close()
    with pytest.raises(ValueError):  # closed: its temporary file is gone
        spilled.fwd[0]
    memory.close()  # in-memory arrays: nothing to release, still readable
    assert memory.fwd[0].shape == (20, 32, 2)
