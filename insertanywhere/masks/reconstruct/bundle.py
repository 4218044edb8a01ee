"""Bundle adjustment of poses, per-frame depth parameters and (optionally) the focal length.

Depth-map bundle adjustment: there are no free 3D points. A correspondence (pixel p of frame i,
pixel q of frame j, found by chaining optical flow) lifts p with frame i's depth model, moves it
into frame j and compares
  - its projection with q                                   (2 residuals, pixels)
  - its depth with frame j's depth at q, as depth_weight * log(z_pred / z_j(q))   (1 residual)
Every pair is used in both directions, so every frame's depth parameters are pinned.
Unknowns per frame: a rotation increment and translation (camera_from_world), and the depth
parameters (see depth.py); one shared focal length fx = fy when `refine_focal`.
Gauge: frame 0's pose and its first depth parameter stay fixed.

Solved by Levenberg-Marquardt on the normal equations, assembled from per-pair blocks into a
banded sparse matrix (each row of the Jacobian touches two frames and the focal). Cost per iteration is
O(correspondences) to assemble plus O(F) for the banded solve; memory grows linearly with F.
Robust Huber weights are refreshed at every iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.linalg import solveh_banded

from .depth import SCALE
from .correspond import match, sample_cells
from .flow import FlowField, sample_bilinear
from .threads import WORKERS, map_threads
from .pose import so3_exp

POSE_DOF = 6

# Levenberg-Marquardt damping: the step solves (H + mu diag(H)) x = -g, so mu is unitless (a fraction
# of each parameter's own curvature).
LM_MU_START = 1e-4  # starts close to Gauss-Newton: the chained poses are already near the optimum
LM_MU_MIN = 1e-8  # floor of mu after successes: keeps diag(H) in the system when H is near singular
LM_MU_DOWN = 3  # mu divided by this after an accepted step (Nielsen-style gentle decrease)
LM_MU_UP = 8  # mu multiplied by this after a rejected step: a few rejections reach gradient descent
LM_MU_SINGULAR = 10  # mu multiplied by this when the damped system cannot be factorised
LM_TRIES = 6  # damped solves per iteration before giving up: mu grows by up to 8^6 ~ 2.6e5
LM_MIN_GAIN = 1e-5  # relative cost decrease below which an iteration counts as converged
DIAG_FLOOR = 1e-9  # damping floor, a fraction of the largest curvature: an unconstrained parameter's step stays finite
DIAG_FLOOR_MIN = 1e-12  # absolute floor of that largest curvature (an all-zero H: no correspondences)


@dataclass
class Pairs:
    """Correspondences grouped by frame pair; all arrays [P, N] except src, tgt [P].

    p_uv / q_uv: full-res pixels in the source / target frame; p_val / q_val: the depth-model
    input values there; weight: 0 for padding, else 1.
    """

    src: np.ndarray
    tgt: np.ndarray
    p_uv: np.ndarray  # [P, N, 2]
    q_uv: np.ndarray  # [P, N, 2]
    p_val: np.ndarray
    q_val: np.ndarray
    weight: np.ndarray

    @property
    def count(self) -> int:
        return int((self.weight > 0).sum())

    def slices(self, size: int) -> list["Pairs"]:
        """The pairs in consecutive slices of at most `size` pairs."""
        return [self._take(a, min(a + size, len(self.src))) for a in range(0, len(self.src), size)]

    def _take(self, a: int, b: int) -> "Pairs":
        return Pairs(self.src[a:b], self.tgt[a:b], self.p_uv[a:b], self.q_uv[a:b], self.p_val[a:b],
                     self.q_val[a:b], self.weight[a:b])

    def split(self, parts: int) -> list["Pairs"]:
        """The pairs in `parts` consecutive slices (for the threads)."""
        bounds = np.linspace(0, len(self.src), parts + 1).round().astype(int)
        return [Pairs(self.src[a:b], self.tgt[a:b], self.p_uv[a:b], self.q_uv[a:b], self.p_val[a:b],
                      self.q_val[a:b], self.weight[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def build_pairs(gray: np.ndarray, textured: np.ndarray, flow: FlowField, values: np.ndarray, gaps=(1, 2, 4, 8),
                per_pair: int = 48, static: np.ndarray | None = None, seed: int = 0) -> Pairs:
    """Correspondences between frames i and i + g for every gap g (see correspond.match).

    gray: uint8 [F, H, W]; textured (bool), values: [F, H', W'] on the flow grid; static: optional bool
    [F, H', W'], False on moving things (not sampled). Each pair appears in both directions.
    """
    num = values.shape[0]
    h, w = values.shape[1:]
    stride = flow.stride

    def pair(job: tuple[int, int]):
        i, gap = job
        j = i + gap
        rng = np.random.default_rng([seed, gap, i])
        valid = flow.valid[i] & textured[i]
        if static is not None:
            valid &= static[i]
        cy, cx = sample_cells(valid, 2 * per_pair, rng)
        p, q, ok = match(gray, flow, i, j, cy, cx)
        if static is not None:
            iy = np.clip(np.rint(q[:, 1] / stride).astype(np.int64), 0, h - 1)
            ix = np.clip(np.rint(q[:, 0] / stride).astype(np.int64), 0, w - 1)
            ok &= static[j, iy, ix]
        sel = np.flatnonzero(ok)[:per_pair]
        if len(sel) < 8:
            return None
        return i, j, p[sel, 0], p[sel, 1], q[sel, 0], q[sel, 1]

    jobs = [(i, gap) for gap in gaps for i in range(num - gap)]
    rows = [row for row in map_threads(pair, jobs) if row is not None]
    return _pack(rows, values, stride, per_pair)


def without_moving(pairs: Pairs, moving: np.ndarray, stride: int) -> Pairs:
    """The same pairs with correspondences on moving cells (bool [F, H', W'], either end) weighted 0."""
    h, w = moving.shape[1:]

    def on_moving(frames: np.ndarray, uv: np.ndarray) -> np.ndarray:
        iy = np.clip(np.rint(uv[..., 1] / stride).astype(np.int64), 0, h - 1)
        ix = np.clip(np.rint(uv[..., 0] / stride).astype(np.int64), 0, w - 1)
        return moving[frames[:, None], iy, ix]

    keep = ~on_moving(pairs.src, pairs.p_uv) & ~on_moving(pairs.tgt, pairs.q_uv)
    return Pairs(pairs.src, pairs.tgt, pairs.p_uv, pairs.q_uv, pairs.p_val, pairs.q_val, pairs.weight * keep)


def resample_values(pairs: Pairs, values: np.ndarray, stride: int) -> Pairs:
    """The same correspondences with depth-model inputs read from new maps values [F, H', W']."""
    p_val = np.stack([sample_bilinear(values[f], uv[:, 0] / stride, uv[:, 1] / stride)
                      for f, uv in zip(pairs.src, pairs.p_uv)])
    q_val = np.stack([sample_bilinear(values[f], uv[:, 0] / stride, uv[:, 1] / stride)
                      for f, uv in zip(pairs.tgt, pairs.q_uv)])
    return Pairs(pairs.src, pairs.tgt, pairs.p_uv, pairs.q_uv, p_val, q_val, pairs.weight)


def _pack(rows, values, stride, per_pair) -> Pairs:
    """Pad the rows to per_pair points and add the reversed pairs."""
    P = len(rows)
    src = np.zeros(2 * P, np.int64)
    tgt = np.zeros(2 * P, np.int64)
    p_uv = np.zeros((2 * P, per_pair, 2))
    q_uv = np.zeros((2 * P, per_pair, 2))
    weight = np.zeros((2 * P, per_pair))
    for k, (i, j, pu, pv, qu, qv) in enumerate(rows):
        n = len(pu)
        fwd_p = np.stack([pu, pv], -1)
        fwd_q = np.stack([qu, qv], -1)
        src[k], tgt[k] = i, j
        src[P + k], tgt[P + k] = j, i
        p_uv[k, :n], q_uv[k, :n] = fwd_p, fwd_q
        p_uv[P + k, :n], q_uv[P + k, :n] = fwd_q, fwd_p
        weight[k, :n] = weight[P + k, :n] = 1.0
    p_val = np.stack([sample_bilinear(values[f], uv[:, 0] / stride, uv[:, 1] / stride)
                      for f, uv in zip(src, p_uv)]) if P else np.zeros((0, per_pair))
    q_val = np.stack([sample_bilinear(values[f], uv[:, 0] / stride, uv[:, 1] / stride)
                      for f, uv in zip(tgt, q_uv)]) if P else np.zeros((0, per_pair))
    return Pairs(src, tgt, p_uv, q_uv, p_val.astype(np.float64), q_val.astype(np.float64), weight)


@dataclass
class State:
    """What bundle adjustment moves: rotation R [F, 3, 3] and translation t [F, 3] of camera_from_world,
    depth params [F, 2], focal f (fx = fy), principal point c [2] (fixed)."""

    R: np.ndarray
    t: np.ndarray
    params: np.ndarray
    f: float
    c: np.ndarray

    def poses(self) -> np.ndarray:
        out = np.tile(np.eye(4), (len(self.R), 1, 1))
        out[:, :3, :3] = self.R
        out[:, :3, 3] = self.t
        return out

    def K(self) -> np.ndarray:
        return np.array([[self.f, 0, self.c[0]], [0, self.f, self.c[1]], [0, 0, 1.0]])


def _depth(kind: str, values: np.ndarray, params: np.ndarray):
    """Depth z, dz/dparams [..., 2] and an ok mask, per point (params [..., 2] per point)."""
    if kind == SCALE:
        z = values * params[..., 0]
        return z, np.stack([values, np.zeros_like(values)], -1), z > 1e-9
    inv = params[..., 0] * values + params[..., 1]
    ok = inv > 1e-6
    z = 1.0 / np.where(ok, inv, 1.0)
    return z, np.stack([-z * z * values, -z * z], -1), ok


def _project_rows(V: np.ndarray, f: float, Zinv: np.ndarray, x: np.ndarray, y: np.ndarray,
                  depth_weight: float) -> np.ndarray:
    """Apply d(residuals)/d(Xj) to column vectors V [P, N, 3, k] -> [P, N, 3, k].

    Rows: du = f/Z (dX - x dZ), dv = f/Z (dY - y dZ), d(log-depth term) = w/Z dZ, with x = X/Z, y = Y/Z.
    """
    a = (f * Zinv)[..., None]
    out = np.empty_like(V)
    out[..., 0, :] = a * (V[..., 0, :] - x[..., None] * V[..., 2, :])
    out[..., 1, :] = a * (V[..., 1, :] - y[..., None] * V[..., 2, :])
    out[..., 2, :] = (depth_weight * Zinv)[..., None] * V[..., 2, :]
    return out


def residuals(state: State, kind: str, pairs: Pairs, depth_weight: float, jacobian: bool = True):
    """Residuals r [P, N, 3] (du, dv, depth term), validity [P, N] and, if asked, the Jacobian
    [P, N, 3, 2 * (6 + 2) + 1] over (src omega, src t, src params, tgt omega, tgt t, tgt params, f)."""
    R_i, t_i = state.R[pairs.src], state.t[pairs.src][:, None]
    R_j, t_j = state.R[pairs.tgt], state.t[pairs.tgt][:, None]
    f, (cx, cy) = state.f, state.c
    ray = np.empty(pairs.p_uv.shape[:2] + (3,))
    ray[..., 0] = (pairs.p_uv[..., 0] - cx) / f
    ray[..., 1] = (pairs.p_uv[..., 1] - cy) / f
    ray[..., 2] = 1.0
    z, dz, ok_src = _depth(kind, pairs.p_val, state.params[pairs.src][:, None])
    zq, dzq, ok_tgt = _depth(kind, pairs.q_val, state.params[pairs.tgt][:, None])
    Xi = z[..., None] * ray
    Xw = (Xi - t_i) @ R_i                         # R_i^T (Xi - t_i), row vectors
    Y = Xw @ np.swapaxes(R_j, 1, 2)               # R_j Xw
    Xj = Y + t_j
    Z = Xj[..., 2]
    ok = ok_src & ok_tgt & (Z > 1e-6) & (pairs.weight > 0)
    Zinv = 1.0 / np.where(ok, Z, 1.0)
    zqs = np.where(ok, zq, 1.0)
    x = Xj[..., 0] * Zinv
    y = Xj[..., 1] * Zinv
    r = np.empty(Xj.shape)
    r[..., 0] = f * x + cx - pairs.q_uv[..., 0]
    r[..., 1] = f * y + cy - pairs.q_uv[..., 1]
    r[..., 2] = depth_weight * np.log(np.where(ok, Z, 1.0) / zqs)
    r[~ok] = 0.0
    if not jacobian:
        return r, ok, None
    P, N = ok.shape
    R_ji = R_j @ np.swapaxes(R_i, 1, 2)           # [P, 3, 3]
    V = np.zeros((P, N, 3, 2 * (POSE_DOF + 2) + 1))
    # d(Xj)/d(omega_i) = R_j [Xw]x = [Y]x R_j; column k is Y x (R_j e_k)
    V[..., 0:3] = np.cross(Y[..., None, :], np.swapaxes(R_j, 1, 2)[:, None], axis=-1).swapaxes(-1, -2)
    V[..., 3:6] = -R_ji[:, None]
    dXj_dz = ray @ np.swapaxes(R_ji, 1, 2)        # R_ji ray
    V[..., 6:8] = dXj_dz[..., None] * dz[..., None, :]
    V[..., 8:11] = -V[..., 0:3]
    V[..., 11:14] = np.eye(3)
    dXi_df = -Xi * (1.0 / f)
    dXi_df[..., 2] = 0.0
    V[..., 16] = dXi_df @ np.swapaxes(R_ji, 1, 2)
    J = _project_rows(V, f, Zinv, x, y, depth_weight)
    J[..., 2, 14:16] = -depth_weight * dzq / zqs[..., None]
    J[..., 0, 16] += x
    J[..., 1, 16] += y
    J[~ok] = 0.0
    return r, ok, J


def _robust_weights(r: np.ndarray, ok: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """Cauchy IRLS weights [P, N, 3] (one per point for the pixel pair, one for the depth term) and
    the robust cost sum(scale^2 / 2 * log(1 + (e / scale)^2))."""
    e2_px = (r[..., 0] ** 2 + r[..., 1] ** 2) / scale ** 2
    e2_d = r[..., 2] ** 2 / scale ** 2
    w = np.stack([1.0 / (1.0 + e2_px), 1.0 / (1.0 + e2_px), 1.0 / (1.0 + e2_d)], -1) * ok[..., None]
    cost = 0.5 * scale ** 2 * (np.log1p(e2_px) + np.log1p(e2_d))
    return w, float((cost * ok).sum())


def _cost(state, kind, chunks: list[Pairs], depth_weight, robust_px, prior) -> float:
    def chunk_cost(pairs: Pairs) -> float:
        r, ok, _ = residuals(state, kind, pairs, depth_weight, jacobian=False)
        return _robust_weights(r, ok, robust_px)[1]

    return sum(map_threads(chunk_cost, chunks)) + _prior_cost(state.f, prior)


def _linearise(state, kind, chunks: list[Pairs], depth_weight, robust_px, band: int):
    """Gauss-Newton H, g of the robust cost, summed over the chunks (computed on the threads).

    H is returned as a sparse matrix: it is banded (each pair couples two frames at most `band`
    parameters apart) plus the focal's row and column, so a dense H (8 F + 1)^2 would grow with
    the square of the frame count (2 GiB per copy at 2000 frames). Each thread walks its chunk in
    slices of SLICE_PAIRS pairs so the Jacobian [pairs, N, 3, 17] stays small; the slices add into
    H in the same order as one pass would, so H is the same to the last bit."""
    num_frames = len(state.R)

    def chunk_normal_equations(pairs: Pairs):
        acc = _BandedNormal(num_frames * (POSE_DOF + 2), band)
        for part in pairs.slices(SLICE_PAIRS):
            r, ok, J = residuals(state, kind, part, depth_weight)
            w, _ = _robust_weights(r, ok, robust_px)
            acc.add(J, r, w, part)
            del r, ok, J, w
        return acc

    parts = map_threads(chunk_normal_equations, chunks)
    total = parts[0]
    for other in parts[1:]:
        total.merge(other)
    return total


def _prior_cost(f: float, prior: tuple[float, float] | None) -> float:
    """Weak prior 0.5 * strength * log(f / f0)^2 on the focal; prior = (f0, strength) or None."""
    if prior is None:
        return 0.0
    return 0.5 * prior[1] * np.log(f / prior[0]) ** 2


SLICE_PAIRS = 64  # pairs per Jacobian slice: about 2.5 MB of Jacobian, whatever the frame count


class _BandedNormal:
    """H = J^T W J and g = J^T W r over all parameters (8 per frame, then the focal), kept as the
    band |i - j| <= band of the frame parameters plus the focal's row, column and corner."""

    def __init__(self, n_frames_params: int, band: int):
        self.n = n_frames_params
        self.band = band
        self.diags = np.zeros((2 * band + 1, self.n))  # diags[band + i - j, j] = H[i, j]
        self.col = np.zeros(self.n)                     # H[i, focal]
        self.row = np.zeros(self.n)                     # H[focal, i]
        self.corner = np.zeros(1)                       # H[focal, focal]
        self.g = np.zeros(self.n + 1)

    def add(self, J, r, w, pairs: Pairs) -> None:
        P, N = r.shape[:2]
        n_loc = J.shape[-1]
        block = POSE_DOF + 2
        idx = np.concatenate([pairs.src[:, None] * block + np.arange(block),
                              pairs.tgt[:, None] * block + np.arange(block),
                              np.full((P, 1), self.n)], axis=1)
        Jr = J.reshape(P, N * 3, n_loc)
        Jw = Jr * w.reshape(P, N * 3, 1)
        blocks = np.matmul(np.swapaxes(Jw, 1, 2), Jr)
        grads = np.einsum("pmk,pm->pk", Jw, r.reshape(P, N * 3))
        frame = idx[:, :-1]
        rows, cols = frame[:, :, None], frame[:, None, :]
        np.add.at(self.diags, (self.band + rows - cols, np.broadcast_to(cols, blocks[:, :-1, :-1].shape)),
                  blocks[:, :-1, :-1])
        np.add.at(self.col, frame, blocks[:, :-1, -1])
        np.add.at(self.row, frame, blocks[:, -1, :-1])
        np.add.at(self.corner, np.zeros(P, np.int64), blocks[:, -1, -1])
        np.add.at(self.g, idx, grads)

    def merge(self, other: "_BandedNormal") -> None:
        self.diags += other.diags
        self.col += other.col
        self.row += other.row
        self.corner += other.corner
        self.g += other.g

    def matrix(self):
        """H as a scipy.sparse CSR matrix [n + 1, n + 1]."""
        from scipy import sparse

        offsets = np.arange(-self.band, self.band + 1)         # i - j of each stored diagonal
        j = np.arange(self.n)
        rows = j[None, :] + offsets[:, None]
        inside = (rows >= 0) & (rows < self.n)
        cols = np.broadcast_to(j, rows.shape)
        focal = np.full(self.n, self.n)
        r = np.concatenate([rows[inside], j, focal, [self.n]])
        c = np.concatenate([cols[inside], focal, j, [self.n]])
        v = np.concatenate([self.diags[inside], self.col, self.row, self.corner])
        return sparse.csr_matrix((v, (r, c)), shape=(self.n + 1, self.n + 1))


def _solve(A: np.ndarray, g: np.ndarray, band: int, focal: bool) -> np.ndarray:
    """Solve A x = -g for symmetric positive definite A whose leading block is banded (half
    bandwidth `band`) and whose last row / column (the focal, when `focal`) is dense."""
    n = A.shape[0] - 1 if focal else A.shape[0]
    band = min(band, n - 1)
    ab = np.zeros((band + 1, n))
    lead = A[:n, :n]
    for k in range(band + 1):
        ab[band - k, k:] = lead.diagonal(k)
    if not focal:
        return solveh_banded(ab, -g)
    col = A[:n, [n]].toarray().ravel()
    row = A[[n], :n].toarray().ravel()
    corner = A[n, n]
    rhs = np.stack([-g[:n], col], axis=1)
    x = solveh_banded(ab, rhs)
    step_f = (-g[n] - row @ x[:, 0]) / (corner - row @ x[:, 1])
    return np.append(x[:, 0] - x[:, 1] * step_f, step_f)


def _apply(state: State, delta: np.ndarray) -> State:
    F = len(state.R)
    d = delta[:-1].reshape(F, POSE_DOF + 2)
    return State(R=state.R @ so3_exp(d[:, 0:3]), t=state.t + d[:, 3:6], params=state.params + d[:, 6:8],
                 f=state.f + delta[-1], c=state.c)


def free_mask(num_frames: int, kind: str, refine_focal: bool, fixed_frames=(0,)) -> np.ndarray:
    """Which of the 8 F + 1 parameters move: not the fixed frames' poses, not frame 0's first depth
    parameter (the scale gauge), not the unused second parameter of "scale", the focal if asked."""
    block = POSE_DOF + 2
    free = np.ones(num_frames * block + 1, bool)
    for t in fixed_frames:
        free[t * block:t * block + POSE_DOF] = False
    free[POSE_DOF] = False
    if kind == SCALE:
        free[POSE_DOF + 1:num_frames * block:block] = False
    free[-1] = refine_focal
    return free


def _damped_step(state: State, cost: float, mu: float, Hf, gf: np.ndarray, free: np.ndarray, band: int,
                 refine_focal: bool, cost_of) -> tuple[State, float, float, float | None]:
    """One Levenberg-Marquardt iteration on the free parameters' H and g: up to LM_TRIES damped
    solves, mu raised after each that fails to lower cost_of(state). Returns (state, cost, mu, the
    relative cost decrease, or None when no step lowered the cost and the state is unchanged)."""
    diag = np.maximum(Hf.diagonal(), DIAG_FLOOR * max(Hf.diagonal().max(), DIAG_FLOOR_MIN))
    for _ in range(LM_TRIES):
        try:
            step = _solve(Hf + sparse.diags(mu * diag, format="csr"), gf, band, refine_focal)
        except np.linalg.LinAlgError:
            mu *= LM_MU_SINGULAR
            continue
        delta = np.zeros(len(free))
        delta[free] = step
        trial = _apply(state, delta)
        new_cost = cost_of(trial)
        if new_cost < cost:
            gain = (cost - new_cost) / max(cost, 1e-12)
            return trial, new_cost, max(mu / LM_MU_DOWN, LM_MU_MIN), gain
        mu *= LM_MU_UP
    return state, cost, mu, None


def bundle_adjust(state: State, kind: str, pairs: Pairs, *, refine_focal: bool = False,
                  depth_weight: float = 3.0, robust_px: float = 0.5, iterations: int = 15,
                  focal_prior: float = 0.01, fixed_frames=(0,)) -> tuple[State, dict]:
    """Levenberg-Marquardt on the robust cost; returns the refined state and a short log.

    depth_weight: weight of the log-depth residual against the pixel residuals; robust_px: scale of
    the Cauchy loss (px; residuals well above it count less and less); iterations: at most this many
    linearisations (fewer when an iteration gains less than LM_MIN_GAIN); fixed_frames: frames
    whose pose stays put (the gauge).
    When the focal is refined, a weak prior (focal_prior per correspondence, on log f) keeps it
    near its starting value where the video does not pin it down (e.g. a pan with little parallax;
    then its value hardly matters for reprojection either).
    """
    F = len(state.R)
    free = free_mask(F, kind, refine_focal, fixed_frames)
    block = POSE_DOF + 2
    band = (int(np.abs(pairs.src - pairs.tgt).max(initial=0)) + 1) * block
    prior = (state.f, focal_prior * pairs.count) if refine_focal and focal_prior > 0 else None
    chunks = pairs.split(WORKERS)
    cost = _cost(state, kind, chunks, depth_weight, robust_px, prior)
    start = cost
    mu = LM_MU_START
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 (reported after the loop)
        normal = _linearise(state, kind, chunks, depth_weight, robust_px, band)
        g = normal.g
        if prior is not None:
            normal.corner[0] += prior[1] / state.f ** 2
            g[-1] += prior[1] * np.log(state.f / prior[0]) / state.f
        H = normal.matrix()
        del normal
        state, cost, mu, gain = _damped_step(state, cost, mu, H[free][:, free], g[free], free, band, refine_focal,
                                             lambda trial: _cost(trial, kind, chunks, depth_weight, robust_px, prior))
        if gain is None or gain < LM_MIN_GAIN:
            break
    n = max(pairs.count, 1)
    r, ok, _ = residuals(state, kind, pairs, depth_weight, jacobian=False)
    px = np.hypot(r[..., 0], r[..., 1])[ok]
    rel = np.abs(r[..., 2])[ok] / depth_weight
    return state, {"iterations": done, "cost_start": start / n, "cost_end": cost / n,
                   "px_median": float(np.median(px)) if px.size else 0.0,
                   "depth_rel_median": float(np.median(rel)) if rel.size else 0.0}
