"""Depth edges blurred into ramps are snapped back to steps (reconstruct.edges)."""

import cv2
import numpy as np

from insertanywhere.masks.reconstruct.edges import auto_radius, sharpen_edges

EDGE_COLUMN = 60  # columns < 60: the occluder at depth 1; the rest: a wall at depth 4


def _step_depth():
    depth = np.full((1, 40, 120), 4.0, np.float32)
    depth[:, :, :EDGE_COLUMN] = 1.0
    return depth


def _blurred(depth, sigma=2.0):
    """What a depth network gives: the disparity blurred across the edge."""
    inverse = cv2.GaussianBlur(1.0 / depth[0], (0, 0), sigma)
    return (1.0 / inverse)[None].astype(np.float32)


def _visible_columns(depth, object_depth=1.1):
    """Columns of row 20 where an object at object_depth passes the z-test (scene farther)."""
    return np.flatnonzero(depth[0, 20] > object_depth)


def test_a_blurred_step_becomes_the_step_again():
    truth = _step_depth()
    blurred = _blurred(truth)
    # the object just behind the occluder shows through its blurred rim: the z-test is off by pixels
    assert _visible_columns(blurred)[0] <= EDGE_COLUMN - 2
    sharp = sharpen_edges(blurred, radius=3)
    assert _visible_columns(sharp)[0] == EDGE_COLUMN
    assert np.abs(blurred - truth).max() > 1.0
    assert np.abs(sharp - truth).max() < 0.12 * 4.0  # every pixel is (nearly) on one side or the other


def test_smooth_surfaces_and_sharp_depth_are_left_alone():
    rows = np.linspace(2.0, 2.6, 40, dtype=np.float32)[:, None]
    slope = np.repeat(rows, 120, axis=1)[None]  # a floor receding slowly
    assert np.array_equal(sharpen_edges(slope, radius=3), slope)
    step = _step_depth()
    assert np.array_equal(sharpen_edges(step, radius=3), step)
    blurred = _blurred(step)
    assert np.array_equal(sharpen_edges(blurred, radius=0), blurred)


def test_auto_radius_grows_with_the_frame():
    assert auto_radius(240, 416) == 2
    assert auto_radius(480, 832) == 3
    assert 1 <= auto_radius(64, 64) <= auto_radius(2160, 3840) <= 4
