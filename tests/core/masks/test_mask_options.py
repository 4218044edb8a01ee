"""MaskOptions (every knob checked, the error names it and its range) and the options reaching the
stages (issue #17: option objects instead of long argument lists)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from option_rules import assert_bad_values_refused, assert_every_field_listed

from insertanywhere.masks.object3d import MAX_FACES, object_from_trimesh
from insertanywhere.masks.options import CAMERA_ONLY, MaskOptions
from insertanywhere.masks.pipeline import masks_from_scene
from insertanywhere.masks.placement import parse_placement
from insertanywhere.sample_scene import make_scene

# option -> (bad values, words of the valid range the error must give)
BAD = {
    "occlusion": ([None, 1, "yes"], "True or False"),
    "propagation": ([0, "no", None], "True or False"),
    "splat_px": ([-1, 9, 1.5, "2", True], "integer from 0 to 8"),
    "upright": (["up", "", None, "ON"], "one of 'auto', 'on', 'off'"),
    "max_faces": ([99, 0, -5, 1000.0, None, True], "at least 100"),
}
# how the error names the option and its value (max_faces keeps object3d's message, which the CLI gives)
NAMED = {"max_faces": "The face budget max_faces is {value!r}"}


def test_every_option_has_bad_values_listed():
    assert_every_field_listed(MaskOptions, BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_option_values_name_the_option_and_the_range(name):
    assert_bad_values_refused(MaskOptions, name, *BAD[name], **({"named": NAMED[name]} if name in NAMED else {}))


def test_good_option_values_are_kept():
    edge = MaskOptions(occlusion=False, propagation=False, splat_px=np.int64(8), upright="off", max_faces=100)
    assert (edge.splat_px, edge.upright, edge.max_faces) == (8, "off", 100)
    assert MaskOptions(splat_px=0).splat_px == 0 and MaskOptions().max_faces == MAX_FACES
    assert CAMERA_ONLY == MaskOptions(occlusion=False, propagation=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        edge.upright = "on"


def test_options_reach_the_stages():
    # occlusion off: the visible mask is the amodal one; propagation off: the pose stays put
    scene = make_scene("occluder", num_frames=9, width=160, height=96, seed=0)
    record, obj = scene.to_scene_record(), object_from_trimesh(scene.object_mesh)
    full = masks_from_scene(record, obj, parse_placement(scene.placement))
    ablated = masks_from_scene(record, obj, parse_placement(scene.placement), CAMERA_ONLY)
    assert (full.visible != full.amodal).any() and (ablated.visible == ablated.amodal).all()
    assert not ablated.track.moving.any()
    poses = np.asarray(ablated.track.world_from_object)
    assert (poses == poses[:1]).all()
