"""The stage records check their shapes on construction and name the field that is off."""

import numpy as np
import pytest

from insertanywhere.masks.scene import ObjectTrack


def _poses(num: int) -> np.ndarray:
    return np.repeat(np.eye(4)[None], num, axis=0)


def test_track_defaults_to_nothing_followed_in_every_frame():
    track = ObjectTrack(_poses(5))
    assert track.support_count.tolist() == [0] * 5 and track.support_count.dtype == np.int64
    assert track.moving.tolist() == [False] * 5 and track.warnings == []


def test_track_keeps_its_per_frame_values():
    track = ObjectTrack(_poses(3), [7, 6, 0], [False, True, True], ["lost"])
    assert track.support_count.tolist() == [7, 6, 0] and track.moving.tolist() == [False, True, True]


@pytest.mark.parametrize("kwargs, field", [
    ({"world_from_object": np.eye(4)}, "world_from_object"),
    ({"world_from_object": _poses(3).astype(np.int64)}, "world_from_object"),
    ({"support_count": [1, 2]}, "support_count"),
    ({"support_count": [1.5, 2.0, 3.0]}, "support_count"),
    ({"moving": [0, 1, 0]}, "moving"),
    ({"moving": np.zeros((3, 1), bool)}, "moving"),
    ({"warnings": "lost"}, "warnings"),
    ({"support": np.zeros((4, 2))}, "support"),
])
def test_a_wrong_track_field_is_named(kwargs, field):
    with pytest.raises(ValueError, match=rf"ObjectTrack\.{field}\b"):
        ObjectTrack(**{"world_from_object": _poses(3), **kwargs})
