"""Pieces of 4D Reconstruct on tiny analytic inputs: bundle-adjustment Jacobian, depth alignment,
triangulation, flow on a known shift."""

import numpy as np
import pytest

from insertanywhere.masks.reconstruct.bundle import Pairs, State, bundle_adjust, residuals
from insertanywhere.masks.reconstruct.depth import INVERSE_AFFINE, SCALE, depth_from_params, robust_fit
from insertanywhere.masks.reconstruct.flow import compute_flow, follow
from insertanywhere.masks.reconstruct.pose import so3_exp
from insertanywhere.masks.reconstruct.triangulate import triangulate


def _random_problem(kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    F, P, N = 3, 4, 20
    R = so3_exp(rng.normal(0, 0.05, (F, 3)))
    t = rng.normal(0, 0.1, (F, 3))
    params = np.c_[rng.uniform(0.8, 1.2, F), rng.uniform(0.05, 0.2, F)] if kind == INVERSE_AFFINE else \
        np.c_[rng.uniform(0.8, 1.2, F), np.zeros(F)]
    src = np.array([0, 1, 1, 2])
    tgt = np.array([1, 0, 2, 1])
    values = rng.uniform(0.3, 1.0, (P, N)) if kind == INVERSE_AFFINE else rng.uniform(2, 5, (P, N))
    pairs = Pairs(src=src, tgt=tgt, p_uv=rng.uniform(10, 150, (P, N, 2)), q_uv=rng.uniform(10, 150, (P, N, 2)),
                  p_val=values, q_val=values[::-1].copy(), weight=np.ones((P, N)))
    state = State(R=R, t=t, params=params, f=180.0, c=np.array([80.0, 60.0]))
    return state, pairs


@pytest.mark.parametrize("kind", [INVERSE_AFFINE, SCALE])
def test_bundle_jacobian_matches_finite_differences(kind):
    state, pairs = _random_problem(kind)
    r0, ok, J = residuals(state, kind, pairs, depth_weight=3.0)
    assert ok.all()
    eps = 1e-6
    P = len(pairs.src)
    for col in range(17):
        side, local = (pairs.src, col) if col < 8 else (pairs.tgt, col - 8)
        numeric = np.zeros_like(r0)
        for p in range(P):
            frame = side[p] if col < 16 else None
            s2 = State(R=state.R.copy(), t=state.t.copy(), params=state.params.copy(), f=state.f, c=state.c)
            if col == 16:
                s2.f += eps
            elif local < 3:
                d = np.zeros(3)
                d[local] = eps
                s2.R[frame] = s2.R[frame] @ so3_exp(d)
            elif local < 6:
                s2.t[frame, local - 3] += eps
            else:
                s2.params[frame, local - 6] += eps
            r1, _, _ = residuals(s2, kind, pairs, depth_weight=3.0, jacobian=False)
            numeric[p] = (r1[p] - r0[p]) / eps
        np.testing.assert_allclose(J[..., col], numeric, rtol=1e-3, atol=1e-4, err_msg=f"column {col}")


def test_bundle_adjustment_recovers_a_perturbed_camera():
    """Exact correspondences from a known scene; one camera and one depth shift perturbed."""
    rng = np.random.default_rng(2)
    F, N = 4, 60
    K = np.array([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]])
    R = so3_exp(np.c_[np.zeros(F), np.linspace(0, 0.1, F), np.zeros(F)])
    t = np.c_[np.linspace(0, -0.4, F), np.zeros(F), np.zeros(F)]
    pts = np.c_[rng.uniform(-1.5, 1.5, (200, 2)), rng.uniform(3, 6, 200)]  # world = camera 0
    true_params = np.c_[np.ones(F), np.full(F, 0.05)]  # 1/z = d + 0.05
    src, tgt, p_uv, q_uv, p_val, q_val = [], [], [], [], [], []
    for i in range(F):
        for j in range(F):
            if i == j:
                continue
            sel = rng.choice(len(pts), N, replace=False)
            ci = pts[sel] @ R[i].T + t[i]
            cj = pts[sel] @ R[j].T + t[j]
            src.append(i), tgt.append(j)
            p_uv.append((ci @ K.T)[:, :2] / ci[:, 2:])
            q_uv.append((cj @ K.T)[:, :2] / cj[:, 2:])
            p_val.append(1 / ci[:, 2] - 0.05)
            q_val.append(1 / cj[:, 2] - 0.05)
    pairs = Pairs(np.array(src), np.array(tgt), np.array(p_uv), np.array(q_uv), np.array(p_val),
                  np.array(q_val), np.ones((len(src), N)))
    start = State(R=R @ so3_exp(np.array([0.0, 0.02, 0.01])), t=t + [0.05, 0.0, 0.03],
                  params=true_params + [0, 0.03], f=200.0, c=K[:2, 2])
    start.R[0], start.t[0] = np.eye(3), 0.0
    fitted, log = bundle_adjust(start, INVERSE_AFFINE, pairs, iterations=30)
    assert log["cost_end"] < 1e-6 < log["cost_start"]
    np.testing.assert_allclose(fitted.t, t, atol=1e-4)
    np.testing.assert_allclose(fitted.params, true_params, atol=1e-4)


def test_robust_affine_fit_ignores_outliers():
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 1, 500)
    z = 1.0 / (0.7 * d + 0.2)
    z[:50] *= 3.0  # 10% gross outliers
    a, b = robust_fit(INVERSE_AFFINE, d, z)
    assert a == pytest.approx(0.7, rel=0.01) and b == pytest.approx(0.2, rel=0.02)
    assert depth_from_params(INVERSE_AFFINE, d[50:], np.array([a, b])) == pytest.approx(z[50:], rel=0.01)
    assert robust_fit(SCALE, z[50:] / 2.5, z[50:])[0] == pytest.approx(2.5)


def test_triangulation_of_a_known_point():
    K = np.array([[300.0, 0, 100], [0, 300.0, 80], [0, 0, 1]])
    pose_b = np.eye(4)
    pose_b[:3, :3] = so3_exp(np.array([0.0, 0.05, 0.0]))
    pose_b[:3, 3] = [-0.3, 0.0, 0.02]
    X = np.array([[0.4, -0.2, 4.0], [-1.0, 0.3, 6.0]])
    pa = (X @ K.T)[:, :2] / X[:, 2:]
    Xb = X @ pose_b[:3, :3].T + pose_b[:3, 3]
    pb = (Xb @ K.T)[:, :2] / Xb[:, 2:]
    depth, angle = triangulate(K, np.eye(4), pose_b, pa, pb)
    np.testing.assert_allclose(depth, X[:, 2], rtol=1e-9)
    assert (angle > 2.0).all()


@pytest.mark.parametrize("stride", [1, 2])
def test_flow_of_a_shifted_texture(stride):
    """A texture moved by (3, -2) px per frame: flow_fwd = (3, -2), flow_bwd = (-3, 2) in full-res px.

    DIS shrinks displacements by a few percent on a coarse grid (hence the looser tolerance at
    stride 2; the geometry refines its points with Lucas-Kanade for that reason)."""
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (160, 220), dtype=np.uint8), (0, 0), 1.5)
    gray = np.stack([np.roll(base, (-2 * k, 3 * k), axis=(0, 1))[20:116, 20:180] for k in range(3)])
    flow = compute_flow(gray, stride)
    fwd, bwd, valid = flow.fwd, flow.bwd, flow.valid
    assert flow.stride == stride and flow.valid_bwd.shape == valid.shape == fwd.shape[:3]
    inner = (slice(4, -4), slice(4, -4))
    tol = 0.05 if stride == 1 else 0.2
    np.testing.assert_allclose(np.median(fwd[0][inner].reshape(-1, 2), axis=0), [3, -2], atol=tol)
    np.testing.assert_allclose(np.median(bwd[0][inner].reshape(-1, 2), axis=0), [-3, 2], atol=tol)
    assert valid[0][inner].mean() > 0.95
    u, v, ok = follow(fwd, valid, stride, np.array([40.0]), np.array([40.0]))
    assert ok[0] and u[0] == pytest.approx(46.0, abs=2 * tol) and v[0] == pytest.approx(36.0, abs=2 * tol)
