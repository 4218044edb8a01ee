"""Property tests of the camera / rigid-motion math (masks.geometry)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from insertanywhere.masks.geometry import (invert_rigid, kabsch, make_pose, pixel_grid, project, rot_x, rot_y, rot_z,
                                           rotation_angle_deg, transform, unproject)

angles = st.floats(-180, 180, allow_nan=False)
coords = st.floats(-5, 5, allow_nan=False)
seeds = st.integers(0, 2**32 - 1)


def random_rotation(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def random_pose(rng, scale=1.0):
    return make_pose(random_rotation(rng), rng.uniform(-3, 3, 3), scale)


def intrinsics(rng):
    f = rng.uniform(100, 2000)
    return np.array([[f, 0, rng.uniform(50, 500)], [0, f * rng.uniform(0.9, 1.1), rng.uniform(50, 500)], [0, 0, 1]])


@settings(max_examples=60, deadline=None)
@given(seed=seeds)
def test_project_unproject_round_trip(seed):
    rng = np.random.default_rng(seed)
    K = intrinsics(rng)
    pts = np.column_stack([rng.uniform(-4, 4, 50), rng.uniform(-4, 4, 50), rng.uniform(0.05, 80, 50)])
    uv, z = project(pts, K)
    back = unproject(uv[:, 0], uv[:, 1], z, K)
    np.testing.assert_allclose(back, pts, rtol=1e-9, atol=1e-9)
    u, v = pixel_grid(7, 9, stride=2)
    z = rng.uniform(0.5, 10, u.shape)
    uv2, z2 = project(unproject(u, v, z, K), K)
    np.testing.assert_allclose(uv2[..., 0], u, atol=1e-3)
    np.testing.assert_allclose(uv2[..., 1], v, atol=1e-3)
    np.testing.assert_allclose(z2, z, rtol=1e-6)


def test_points_behind_the_camera_do_not_project():
    uv, z = project(np.array([[0.0, 0.0, -1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]), np.eye(3))
    assert np.isnan(uv[:2]).all() and np.isfinite(uv[2]).all() and z[0] == -1.0


@settings(max_examples=60, deadline=None)
@given(seed=seeds)
def test_pose_inverse_and_composition(seed):
    rng = np.random.default_rng(seed)
    A, B = random_pose(rng), random_pose(rng)
    np.testing.assert_allclose(A @ invert_rigid(A), np.eye(4), atol=1e-10)
    np.testing.assert_allclose(invert_rigid(A @ B), invert_rigid(B) @ invert_rigid(A), atol=1e-10)
    batch = np.stack([A, B])
    np.testing.assert_allclose(invert_rigid(batch)[1], invert_rigid(B), atol=1e-12)
    pts = rng.uniform(-2, 2, (20, 3))
    np.testing.assert_allclose(transform(A @ B, pts), transform(A, transform(B, pts)), atol=1e-10)
    np.testing.assert_allclose(transform(invert_rigid(A), transform(A, pts)), pts, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(a=angles, b=angles, c=angles)
def test_axis_rotations_are_proper_and_compose(a, b, c):
    for R in (rot_x(a), rot_y(b), rot_z(c)):
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == np.float64(1.0) or abs(np.linalg.det(R) - 1) < 1e-12
    np.testing.assert_allclose(rot_y(a) @ rot_y(b), rot_y(a + b), atol=1e-12)
    assert abs(rotation_angle_deg(rot_z(c)) - abs((c + 180) % 360 - 180)) < 1e-6
    # right-handed: +90 about z turns +x into +y
    np.testing.assert_allclose(rot_z(90) @ [1, 0, 0], [0, 1, 0], atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(seed=seeds, noise=st.floats(0, 0.01))
def test_kabsch_recovers_noisy_rigid_motion(seed, noise):
    rng = np.random.default_rng(seed)
    T = random_pose(rng)
    src = rng.uniform(-1, 1, (80, 3))
    dst = transform(T, src) + rng.normal(0, noise, src.shape)
    est = kabsch(src, dst)
    assert rotation_angle_deg(est[:3, :3].T @ T[:3, :3]) < 2.0 * noise * 57.3 + 1e-6
    assert np.linalg.norm(est[:3, 3] - T[:3, 3]) < 10 * noise + 1e-9
    assert abs(np.linalg.det(est[:3, :3]) - 1) < 1e-9  # never a reflection


@settings(max_examples=40, deadline=None)
@given(seed=seeds, scale=st.floats(0.05, 20))
def test_kabsch_with_scale_and_weights(seed, scale):
    rng = np.random.default_rng(seed)
    T = random_pose(rng, scale)
    src = rng.uniform(-1, 1, (30, 3))
    dst = transform(T, src)
    dst[:5] += 10.0  # gross outliers with zero weight do not matter
    w = np.ones(30)
    w[:5] = 0
    est = kabsch(src, dst, weights=w, with_scale=True)
    np.testing.assert_allclose(est, T, atol=1e-8 * max(1.0, scale))


def test_kabsch_planar_points_stay_proper_rotations():
    rng = np.random.default_rng(3)
    src = np.column_stack([rng.uniform(-1, 1, (40, 2)), np.zeros(40)])
    T = make_pose(rot_x(30) @ rot_z(70), [0.2, -0.1, 3.0])
    est = kabsch(src, transform(T, src))
    np.testing.assert_allclose(est, T, atol=1e-10)
