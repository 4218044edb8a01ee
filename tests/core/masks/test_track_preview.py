"""The track preview draws the object's base where the track projects it, in every frame."""

import numpy as np

from insertanywhere.masks.geometry import project, transform
from insertanywhere.masks.scene import ObjectTrack, SceneRecord
from insertanywhere.masks.track_preview import track_preview


def test_base_marker_lands_on_the_projected_base():
    frames = np.zeros((3, 60, 80, 3), np.uint8)
    K = np.array([[80.0, 0, 40], [0, 80, 30], [0, 0, 1]])
    poses = np.repeat(np.eye(4)[None], 3, axis=0)
    poses[:, 0, 3] = [-0.5, 0.0, 0.5]  # the camera moves sideways
    world_from_object = np.diag([0.3, 0.3, 0.3, 1.0])
    world_from_object[:3, 3] = [0, 0.2, 4.0]
    scene = SceneRecord(frames, np.full((3, 60, 80), 5.0, np.float32), K, poses, np.zeros((3, 60, 80), bool))
    track = ObjectTrack(np.repeat(world_from_object[None], 3, axis=0), moving=[False, False, True])
    out = track_preview(scene, track)
    assert out.shape == frames.shape and out.dtype == np.uint8
    for t in range(3):
        uv, _ = project(transform(poses[t] @ world_from_object, np.zeros((1, 3))), K)
        u, v = (int(round(c)) for c in uv[0])
        assert out[t, v, u].sum() > 300  # the marker is drawn there
        assert out[t].any(axis=-1).mean() < 0.2  # and not over the whole frame
    assert out[2, v, u, 0] == 255 and out[2, v, u, 1] < 100  # red where the support moved
