"""VACEOptions and KontextOptions: every knob checked, the error names it and its valid range (issue #17)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from option_rules import assert_bad_values_refused, assert_every_field_listed

from insertanywhere.insertion.options import MAX_SEED, KontextOptions, VACEOptions

SEEDS = ([-1, MAX_SEED + 1, 1.0, None, "0", True], f"integer from 0 to {MAX_SEED}")

# option -> (bad values, words of the valid range the error must give)
VACE_BAD = {
    "seed": SEEDS,
    "steps": ([0, -1, 2.0, None, True], "integer >= 1"),
    "cfg": ([-0.1, float("nan"), float("inf"), "5", None, True], "finite number >= 0"),
    "shift": ([-1.0, float("inf"), None], "finite number >= 0"),
    "scheduler": (["ddim", "", None, "UNIPC"], "one of 'unipc', 'euler', 'dpm++'"),
    "conditioning_scale": ([-0.5, float("nan"), "1"], "finite number >= 0"),
    "mask_fill": (["grey", "", None], "one of 'gray', 'keep'"),
    "grow": ([-1, 2.5, None], "integer >= 0"),
    "max_side": ([-16, 832.0, None], "integer >= 0 (0 keeps the video's size)"),
    "window": ([0, 1, 4, 10, 80, 81.0, None, True], "integer 4k+1 >= 5"),
    "overlap": ([0, -1, 4.0, None], "integer >= 1"),
    "colour_lock": ([1, None, "yes"], "True or False"),
}
KONTEXT_BAD = {
    "steps": ([0, -3, 28.0, None], "integer >= 1"),
    "guidance": ([-1.0, float("nan"), None, "2.5"], "finite number >= 0"),
    "strength": ([0, 0.0, -0.5, 1.01, float("inf"), None], "finite number > 0 and <= 1.0"),
    "seed": SEEDS,
    "resolution": (["native", "", None], "one of 'preferred', 'input'"),
    "grow": ([-1, 8.0, None], "integer >= 0"),
    "feather": ([-2, 6.5, None], "integer >= 0"),
}
CASES = [(VACEOptions, VACE_BAD), (KontextOptions, KONTEXT_BAD)]


@pytest.mark.parametrize("cls, bad", CASES, ids=["VACEOptions", "KontextOptions"])
def test_every_option_has_bad_values_listed(cls, bad):
    assert_every_field_listed(cls, bad)


@pytest.mark.parametrize("cls, name", [(cls, name) for cls, bad in CASES for name in sorted(bad)])
def test_bad_option_values_name_the_option_and_the_range(cls, name):
    assert_bad_values_refused(cls, name, *dict(CASES)[cls][name])


def test_good_option_values_are_kept():
    edge = VACEOptions(seed=np.uint64(MAX_SEED), steps=1, cfg=0, shift=0.0, scheduler="dpm++", conditioning_scale=0,
                       mask_fill="keep", grow=0, max_side=16, window=5, overlap=1, colour_lock=False)
    assert (edge.seed, edge.window, edge.scheduler) == (MAX_SEED, 5, "dpm++")
    assert VACEOptions(window=257).window == 257
    kontext = KontextOptions(strength=1, guidance=0.0, resolution="input", grow=0, feather=0, seed=MAX_SEED)
    assert (kontext.strength, kontext.resolution, kontext.seed) == (1, "input", MAX_SEED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        edge.steps = 3
