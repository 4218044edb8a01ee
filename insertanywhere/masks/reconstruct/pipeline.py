"""4D Reconstruct: video (+ optional depth) -> SceneRecord (depth in one scale, K, poses, moving
masks, flow)."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional

import cv2
import numpy as np

from ...errors import InsertAnywhereError
from ...progress import Progress, report
from ..scene import SceneRecord
from . import inputs
from .bundle import State, build_pairs, bundle_adjust, resample_values, without_moving
from ..vertical import detect_segments
from .chain import chain_poses
from .depth import INVERSE_AFFINE, SCALE, depth_from_params
from .edges import sharpen_edges
from .correspond import texture_strength, textured
from .flow import choose_stride, compute_flow, downsample_gray, to_gray
from .motion import moving_masks
from .threads import stack_frames
from .triangulate import correct_depth, depth_from_motion, motion_poses

INITIAL_SHIFT = 0.2  # first guess of b / a for disparity (1/z = a d + b), refined by bundle adjustment


def _moving(kind, values, state, log, fwd, bwd, valid, valid_bwd, gray_grid, stride, tolerance_px, relative,
            height, width):
    """Moving masks bool [F, H, W], tolerances widened to the fit's own residuals; each frame's grid
    depth is made where it is used (float32, as motion reads it) and dropped with its evidence."""
    tolerance = max(tolerance_px, 3.0 * log["px_median"])
    rel = max(relative, 4.0 * log["depth_rel_median"])

    def grid_depth(t: int) -> np.ndarray:
        return depth_from_params(kind, values[t].astype(np.float64), state.params[t]).astype(np.float32)

    return moving_masks(grid_depth, state.K(), state.poses(), fwd, bwd, valid, valid_bwd, gray_grid, stride,
                        tolerance, rel, height, width)


def reconstruct(frames, *, depth=None, disparity=None, K=None, fov_deg: Optional[float] = None,
                fps: float = 16.0, progress: Optional[Progress] = None, flow_stride: Optional[int] = None,
                flow_preset: str = "medium", refine_focal: Optional[bool] = None,
                ba_gaps=(1, 2, 4, 8), ba_points: int = 96, ba_iterations: int = 20,
                depth_weight: float = 3.0, motion_tolerance_px: float = 0.75,
                motion_relative: float = 0.03, refine_depth: Optional[bool] = None, polish: bool = True,
                sharpen_px: Optional[int] = None, seed: int = 0) -> SceneRecord:
    """Reconstruct camera, depth and moving things of a video.

    frames: uint8 [F, H, W, 3] RGB (or float 0..1), F >= 2. At most one of
      depth      float [F, h, w] metric camera z (any resolution with the frames' aspect ratio), or
      disparity  float [F, h, w] relative inverse depth, any per-frame affine (larger = nearer), e.g.
                 a depth network's output or a ComfyUI depth node's IMAGE [F, h, w, 3] in 0..1.
    Without either, depth is triangulated from camera motion; a camera that only turns raises
    InsertAnywhereError asking for depth.
    K: [3, 3] intrinsics; else from fov_deg (horizontal) or a 60 degree default. Unless K is given,
    the focal length is refined from the video (refine_focal=False keeps it).
    NaN / inf / non-positive depth pixels are filled from valid neighbours (listed in
    the record's warnings); a frame with more than half of them invalid is refused.

    How: DIS flow both ways (flow_preset, on a grid of flow_stride, default: long side <= 512);
    cameras chained by PnP (USAC MAGSAC) on Lucas-Kanade-refined correspondences lifted with each
    frame's depth, that depth aligned per frame to the running reconstruction (scale, or scale and
    shift of disparity); bundle adjustment over frame pairs ba_gaps apart (ba_points per pair,
    depth_weight on depth agreement, focal refined only after moving things are masked);
    moving masks from the flow that the camera motion does not explain (motion_tolerance_px +
    motion_relative * parallax, widened to the fit's own residuals); for disparity input
    (refine_depth=None) each frame's depth is finally corrected by a smooth field fitted to
    multi-view triangulation, and with polish the cameras are adjusted once more to that depth.
    Depth edges blurred into ramps are snapped to steps (sharpen_px: ramp half-width, None = by
    frame size, 0 = off; see reconstruct.edges), and near-vertical line segments of a few frames
    are kept for the placement's upright test (masks.vertical).
    Memory: the float32 flow lives in a temporary file (reconstruct.spill; TMPDIR) and each pass
    reads the frames it works on; per-frame intermediates are reduced at once, so what grows with
    the clip is the record returned (insertanywhere.memory has the measured model).

    Returns a SceneRecord: depth float32 [F, H, W] (camera z, one scale for all frames; metric if
    `depth` was metric, else relative with frame 0's median depth = 1), K, camera_from_world
    [F, 4, 4] with frame 0 = identity, moving bool [F, H, W], and flow_fwd / flow_bwd float16
    [F-1, H', W', 2], flow_valid bool [F-1, H', W'] on a grid of stride flow_stride:
    flow_fwd[t, i, j] moves full-res pixel (j*s, i*s) of frame t to frame t+1, in full-res pixels
    (full conventions in reconstruct.flow). The record says where depth and K came from, its
    timings and warnings; its provenance keeps the focal, flow preset and bundle log.
    """
    _seed_opencv(seed)
    with _single_threaded_blas():
        return _reconstruct(frames, depth, disparity, K, fov_deg, fps, progress, flow_stride, flow_preset,
                            refine_focal, ba_gaps, ba_points, ba_iterations, depth_weight, motion_tolerance_px,
                            motion_relative, refine_depth, polish, sharpen_px, seed)


def _seed_opencv(seed: int) -> None:
    """Same input, same output: OpenCV's global RNG (used by its robust estimators) restarts from seed."""
    cv2.setRNGSeed(int(seed))


def _background(fn, *args) -> Future:
    """fn(*args) on its own thread (OpenCV releases the GIL), to be collected with .result()."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ia-background")
    future = pool.submit(fn, *args)
    pool.shutdown(wait=False)
    return future


def _single_threaded_blas():
    """BLAS threads only add overhead on these small solves (and fight the OpenCV threads)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _reconstruct(frames, depth, disparity, K, fov_deg, fps, progress, flow_stride, flow_preset, refine_focal,
                 ba_gaps, ba_points, ba_iterations, depth_weight, motion_tolerance_px, motion_relative,
                 refine_depth, polish, sharpen_px, seed) -> SceneRecord:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    warnings: list[str] = []
    frames = inputs.as_frames(frames)
    num, height, width = frames.shape[:3]
    if depth is not None and disparity is not None:
        raise InsertAnywhereError("Pass either metric depth or disparity, not both.")
    K0, k_source = inputs.intrinsics(height, width, K, fov_deg)
    if refine_focal is None:
        refine_focal = k_source != "given"
    if depth is not None:
        kind, maps, source = SCALE, inputs.prepare_depth(depth, num, height, width, warnings), "metric"
    elif disparity is not None:
        kind, maps, source = INVERSE_AFFINE, inputs.prepare_disparity(
            disparity, num, height, width, warnings), "disparity"
    else:
        kind, maps, source = SCALE, None, "motion"
    stride = flow_stride or choose_stride(height, width)
    steps = num - 1 + 4
    mark = time.perf_counter()
    gray = to_gray(frames)
    # the float32 flow both ways stays on disk, each pass reading the few frames it works on
    fwd, bwd, valid, valid_bwd = compute_flow(gray, stride, flow_preset, progress, 0, steps, spill=True)
    gray_grid = downsample_gray(gray, stride)
    tex = textured(texture_strength(gray_grid))
    timings["flow"] = time.perf_counter() - mark
    lines_job = _background(detect_segments, frames)

    mark = time.perf_counter()
    params = np.zeros((num, 2))
    params[0] = (1.0, 0.0) if kind == SCALE else (1.0, INITIAL_SHIFT)
    if maps is None:  # no depth given: cameras from motion, then depth triangulated with them
        poses = motion_poses(K0, gray, tex, fwd, bwd, valid, valid_bwd, stride, seed=seed, warnings=warnings)
        maps = depth_from_motion(K0, poses, gray, gray_grid, tex, fwd, bwd, valid, valid_bwd, stride,
                                 height, width, seed=seed)
        params[:, 0] = 1.0
    # the depth-model inputs on the flow grid: a view of the float32 maps (no copy); every reader
    # takes a frame or points of it to float64 exactly
    values = maps[:, ::stride, ::stride]
    if source != "motion":
        poses, params, _ = chain_poses(kind, values, params, K0, gray, tex, fwd, bwd, valid, stride,
                                       seed=seed, warnings=warnings)
    timings["chain"] = time.perf_counter() - mark
    report(progress, num, steps)

    mark = time.perf_counter()
    state = State(R=poses[:, :3, :3].copy(), t=poses[:, :3, 3].copy(), params=params, f=float(K0[0, 0]),
                  c=K0[:2, 2].copy())
    pairs = build_pairs(gray, tex, fwd, valid, stride, values, ba_gaps, ba_points, seed=seed)
    # the focal is left to the second pass: moving things, still in here, bias it
    state, log = bundle_adjust(state, kind, pairs, refine_focal=False, depth_weight=depth_weight,
                               iterations=ba_iterations)
    timings["bundle"] = time.perf_counter() - mark
    report(progress, num + 1, steps)

    mark = time.perf_counter()
    moving = _moving(kind, values, state, log, fwd, bwd, valid, valid_bwd, gray_grid, stride,
                     motion_tolerance_px, motion_relative, height, width)
    timings["motion"] = time.perf_counter() - mark
    report(progress, num + 2, steps)

    if moving.any() or refine_focal:  # refine once more without the moving things
        mark = time.perf_counter()
        pairs = without_moving(pairs, moving[:, ::stride, ::stride], stride)
        state, log = bundle_adjust(state, kind, pairs, refine_focal=refine_focal, depth_weight=depth_weight,
                                   iterations=ba_iterations if refine_focal else max(1, ba_iterations // 2))
        timings["bundle_static"] = time.perf_counter() - mark

    mark = time.perf_counter()
    # disparity and triangulated maps are this function's own arrays: each frame's depth replaces
    # its map in place (a metric input may be the caller's array, so its depth is a new one)
    full_depth = stack_frames(lambda t, maps=maps: depth_from_params(kind, maps[t], state.params[t]), num, np.float32,
                              out=maps if source != "metric" else None)
    del maps, values
    poses = state.poses()
    if refine_depth is None:
        refine_depth = kind == INVERSE_AFFINE
    if refine_depth:
        usable = tex & ~moving[:, ::stride, ::stride]
        full_depth, corrected = correct_depth(full_depth, state.K(), poses, gray, usable, fwd, bwd, valid,
                                              valid_bwd, stride, seed=seed)
        if corrected < num:
            warnings.append(f"depth: {num - corrected} frames had too little parallax for a multi-view "
                            "correction and keep the input's shape")
        if polish:  # cameras once more against the corrected depth (its shape now fixed)
            grid = full_depth[:, ::stride, ::stride]  # a view: read as float64 point by point
            pairs = resample_values(pairs, grid, stride)
            state = State(R=state.R, t=state.t, params=np.c_[np.ones(num), np.zeros(num)], f=state.f, c=state.c)
            state, log = bundle_adjust(state, SCALE, pairs, refine_focal=refine_focal, depth_weight=depth_weight,
                                       iterations=max(1, ba_iterations // 2))
            poses = state.poses()
            full_depth *= state.params[:, :1, None].astype(np.float32)
            del grid
    # the scene record keeps the flow as float16, read from the disk copy frame by frame
    flow_fwd = stack_frames(fwd.__getitem__, len(fwd), np.float16)
    flow_bwd = stack_frames(bwd.__getitem__, len(bwd), np.float16)
    fwd.close()
    bwd.close()
    del fwd, bwd, valid_bwd, gray
    full_depth = sharpen_edges(full_depth, sharpen_px, out=full_depth)
    timings["depth"] = time.perf_counter() - mark
    mark = time.perf_counter()
    lines = lines_job.result()
    timings["lines"] = time.perf_counter() - mark  # waiting only: found alongside the bundle adjustment
    mark = time.perf_counter()
    if source != "metric":
        unit = float(np.median(full_depth[0]))
        full_depth /= unit
        poses[:, :3, 3] /= unit
    timings["output"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    report(progress, steps, steps)
    provenance = {"focal_initial": float(K0[0, 0]), "focal": float(state.f), "refine_focal": bool(refine_focal),
                  "flow_preset": flow_preset, "bundle": log}
    return SceneRecord(frames=frames, depth=full_depth, K=state.K().astype(np.float32),
                       camera_from_world=poses.astype(np.float32), moving=moving,
                       flow_fwd=flow_fwd, flow_bwd=flow_bwd, flow_valid=valid,
                       flow_stride=stride, fps=float(fps), depth_source=source, intrinsics_source=k_source,
                       warnings=warnings, timings=timings, provenance=provenance, lines=lines)
