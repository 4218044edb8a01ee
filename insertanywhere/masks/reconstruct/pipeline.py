"""4D Reconstruct: video (+ optional depth) -> SceneRecord (depth in one scale, K, poses, moving
masks, flow)."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from ...errors import InsertAnywhereError
from ...progress import Progress, report, timed
from ..scene import SceneRecord
from . import inputs
from .bundle import State, build_pairs, bundle_adjust, resample_values, without_moving
from ..vertical import detect_segments
from .chain import chain_poses
from .depth import INVERSE_AFFINE, SCALE, depth_from_params
from .edges import sharpen_edges
from .correspond import texture_strength, textured
from .flow import FlowField, choose_stride, compute_flow, downsample_gray, to_gray
from .motion import moving_masks
from .options import ReconstructOptions
from .threads import stack_frames
from .triangulate import correct_depth, depth_from_motion, motion_poses

INITIAL_SHIFT = 0.2  # first guess of b / a for disparity (1/z = a d + b), refined by bundle adjustment


def reconstruct(frames, *, depth=None, disparity=None, K=None, fov_deg: Optional[float] = None,
                fps: float = 16.0, progress: Optional[Progress] = None,
                options: Optional[ReconstructOptions] = None) -> SceneRecord:
    """Reconstruct camera, depth and moving things of a video.

    frames: uint8 [F, H, W, 3] RGB (or float 0..1), F >= 2. At most one of
      depth      float [F, h, w] metric camera z (any resolution with the frames' aspect ratio), or
      disparity  float [F, h, w] relative inverse depth, any per-frame affine (larger = nearer), e.g.
                 a depth network's output or a ComfyUI depth node's IMAGE [F, h, w, 3] in 0..1.
    Without either, depth is triangulated from camera motion; a camera that only turns raises
    InsertAnywhereError asking for depth.
    K: [3, 3] intrinsics; else from fov_deg (horizontal) or a 60 degree default. Unless K is given,
    the focal length is refined from the video (options.refine_focal=False keeps it).
    NaN / inf / non-positive depth pixels are filled from valid neighbours (listed in
    the record's warnings); a frame with more than half of them invalid is refused.
    options: the tuning knobs (ReconstructOptions: units, ranges, defaults); None = the defaults.

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
    timings (seconds per stage: flow, chain, bundle, motion, bundle_static when run, depth, lines,
    output, total) and warnings; its provenance keeps the focal, flow preset and bundle log.
    """
    if options is None:
        options = ReconstructOptions()
    elif not isinstance(options, ReconstructOptions):
        raise InsertAnywhereError(f"options must be a ReconstructOptions, got {type(options).__name__}; "
                                  "build one with ReconstructOptions(name=value, ...).")
    _seed_opencv(options.seed)
    with _single_threaded_blas():
        return _reconstruct(frames, depth, disparity, K, fov_deg, fps, progress, options)


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


@dataclass
class _Run:
    """What the steps of one reconstruction share: the options, the frames (uint8 [F, H, W, 3]) in
    grey (full-res uint8 [F, H, W] and on the flow grid [F, H', W']), their flow, the textured
    cells (bool [F, H', W']), the depth model kind, whether the focal is refined, and where
    warnings, timings (seconds) and progress go. gray and flow are dropped (None) once the depth is done."""

    options: ReconstructOptions
    frames: np.ndarray
    gray: Optional[np.ndarray]
    gray_grid: np.ndarray
    flow: Optional[FlowField]
    tex: np.ndarray
    kind: str
    refine_focal: bool
    warnings: list[str]
    timings: dict[str, float]
    progress: Optional[Progress]

    @property
    def steps(self) -> int:
        return _progress_steps(len(self.frames))

    def report(self, done: int) -> None:
        report(self.progress, done, self.steps)


def _progress_steps(num: int) -> int:
    """One step per flow pair, then four for the stages after it."""
    return num - 1 + 4


def _reconstruct(frames, depth, disparity, K, fov_deg, fps, progress, options: ReconstructOptions) -> SceneRecord:
    started = time.perf_counter()
    warnings: list[str] = []
    frames, kind, maps, source, K0, k_source = _check_inputs(frames, depth, disparity, K, fov_deg, warnings)
    run = _start(frames, kind, k_source, options, warnings, progress)
    lines_job = _background(detect_segments, frames)
    num, stride = len(frames), run.flow.stride

    with timed(run.timings, "chain"):
        poses, params, maps = _first_cameras(run, maps, source, K0)
        # the depth-model inputs on the flow grid: a view of the float32 maps (no copy); every reader
        # takes a frame or points of it to float64 exactly
        values = maps[:, ::stride, ::stride]
    run.report(num)
    state, log, moving, pairs = _cameras(run, poses, params, values, K0)

    with timed(run.timings, "depth"):
        full_depth = _depth_maps(run, maps, state, in_place=source != "metric")
        del maps, values
        refine_depth = kind == INVERSE_AFFINE if options.refine_depth is None else options.refine_depth
        if refine_depth:
            full_depth, state, log = _refined_depth(run, full_depth, state, log, moving, pairs)
        flow_fwd, flow_bwd, flow_valid = _release_flow(run)
        full_depth = sharpen_edges(full_depth, options.sharpen_px, out=full_depth)
        poses = state.poses()
    with timed(run.timings, "lines"):
        lines = lines_job.result()  # waiting only: found alongside the bundle adjustment
    with timed(run.timings, "output"):
        if source != "metric":
            _to_first_frame_unit(full_depth, poses)
    run.timings["total"] = time.perf_counter() - started
    run.report(run.steps)
    provenance = {"focal_initial": float(K0[0, 0]), "focal": float(state.f), "refine_focal": bool(run.refine_focal),
                  "flow_preset": options.flow_preset, "bundle": log}
    return SceneRecord(frames=frames, depth=full_depth, K=state.K().astype(np.float32),
                       camera_from_world=poses.astype(np.float32), moving=moving,
                       flow_fwd=flow_fwd, flow_bwd=flow_bwd, flow_valid=flow_valid,
                       flow_stride=stride, fps=float(fps), depth_source=source, intrinsics_source=k_source,
                       warnings=warnings, timings=run.timings, provenance=provenance, lines=lines)


def _check_inputs(frames, depth, disparity, K, fov_deg, warnings: list[str]):
    """(frames uint8 [F, H, W, 3], depth model kind, maps float32 [F, H, W] or None (no depth given),
    their source "metric" | "disparity" | "motion", K float64 [3, 3], its source)."""
    frames = inputs.as_frames(frames)
    num, height, width = frames.shape[:3]
    if depth is not None and disparity is not None:
        raise InsertAnywhereError("Pass either metric depth or disparity, not both.")
    K0, k_source = inputs.intrinsics(height, width, K, fov_deg)
    if depth is not None:
        return frames, SCALE, inputs.prepare_depth(depth, num, height, width, warnings), "metric", K0, k_source
    if disparity is not None:
        maps = inputs.prepare_disparity(disparity, num, height, width, warnings)
        return frames, INVERSE_AFFINE, maps, "disparity", K0, k_source
    return frames, SCALE, None, "motion", K0, k_source


def _start(frames: np.ndarray, kind: str, k_source: str, options: ReconstructOptions, warnings: list[str],
           progress: Optional[Progress]) -> _Run:
    """The flow both ways (timed as "flow"), the grey grid and its textured cells."""
    timings: dict[str, float] = {}
    stride = options.flow_stride or choose_stride(*frames.shape[1:3])
    with timed(timings, "flow"):
        gray = to_gray(frames)
        # the float32 flow both ways stays on disk, each pass reading the few frames it works on
        flow = compute_flow(gray, stride, options.flow_preset, progress, 0, _progress_steps(len(frames)), spill=True)
        gray_grid = downsample_gray(gray, stride)
        tex = textured(texture_strength(gray_grid))
    refine_focal = k_source != "given" if options.refine_focal is None else options.refine_focal
    return _Run(options=options, frames=frames, gray=gray, gray_grid=gray_grid, flow=flow, tex=tex, kind=kind,
                refine_focal=refine_focal, warnings=warnings, timings=timings, progress=progress)


def _first_cameras(run: _Run, maps: Optional[np.ndarray], source: str, K0: np.ndarray):
    """camera_from_world [F, 4, 4] chained frame to frame, depth params [F, 2], and the depth maps
    float32 [F, H, W] (triangulated from the motion when none were given)."""
    num, height, width = run.frames.shape[:3]
    seed = run.options.seed
    params = np.zeros((num, 2))
    params[0] = (1.0, 0.0) if run.kind == SCALE else (1.0, INITIAL_SHIFT)
    if maps is None:  # no depth given: cameras from motion, then depth triangulated with them
        poses = motion_poses(K0, run.gray, run.tex, run.flow, seed=seed, warnings=run.warnings)
        maps = depth_from_motion(K0, poses, run.gray, run.gray_grid, run.tex, run.flow, height, width, seed=seed)
        params[:, 0] = 1.0
    if source != "motion":
        stride = run.flow.stride
        poses, params, _ = chain_poses(run.kind, maps[:, ::stride, ::stride], params, K0, run.gray, run.tex,
                                       run.flow, seed=seed, warnings=run.warnings)
    return poses, params, maps


def _cameras(run: _Run, poses: np.ndarray, params: np.ndarray, values: np.ndarray, K0: np.ndarray):
    """Bundle adjustment ("bundle"), moving masks ("motion"), then bundle adjustment without the
    moving things ("bundle_static", when there are any or the focal is refined).
    Returns (state, its log, moving bool [F, H, W], the correspondences)."""
    options, num = run.options, len(run.frames)
    with timed(run.timings, "bundle"):
        state = State(R=poses[:, :3, :3].copy(), t=poses[:, :3, 3].copy(), params=params, f=float(K0[0, 0]),
                      c=K0[:2, 2].copy())
        pairs = build_pairs(run.gray, run.tex, run.flow, values, options.ba_gaps, options.ba_points,
                            seed=options.seed)
        # the focal is left to the second pass: moving things, still in here, bias it
        state, log = bundle_adjust(state, run.kind, pairs, refine_focal=False, depth_weight=options.depth_weight,
                                   iterations=options.ba_iterations)
    run.report(num + 1)
    with timed(run.timings, "motion"):
        moving = _moving(run, values, state, log)
    run.report(num + 2)
    if moving.any() or run.refine_focal:  # refine once more without the moving things
        with timed(run.timings, "bundle_static"):
            stride = run.flow.stride
            pairs = without_moving(pairs, moving[:, ::stride, ::stride], stride)
            iterations = options.ba_iterations if run.refine_focal else max(1, options.ba_iterations // 2)
            state, log = bundle_adjust(state, run.kind, pairs, refine_focal=run.refine_focal,
                                       depth_weight=options.depth_weight, iterations=iterations)
    return state, log, moving, pairs


def _moving(run: _Run, values: np.ndarray, state: State, log: dict) -> np.ndarray:
    """Moving masks bool [F, H, W], tolerances widened to the fit's own residuals; each frame's grid
    depth is made where it is used (float32, as motion reads it) and dropped with its evidence."""
    options = run.options
    tolerance = max(options.motion_tolerance_px, 3.0 * log["px_median"])
    rel = max(options.motion_relative, 4.0 * log["depth_rel_median"])
    height, width = run.frames.shape[1:3]

    def grid_depth(t: int) -> np.ndarray:
        return depth_from_params(run.kind, values[t].astype(np.float64), state.params[t]).astype(np.float32)

    return moving_masks(grid_depth, state.K(), state.poses(), run.flow, run.gray_grid, tolerance, rel,
                        height, width)


def _depth_maps(run: _Run, maps: np.ndarray, state: State, in_place: bool) -> np.ndarray:
    """Each frame's depth float32 [F, H, W] from its map and fitted params. Disparity and
    triangulated maps are this reconstruction's own arrays (in_place: each frame's depth replaces
    its map); a metric input may be the caller's array, so its depth is a new one."""
    return stack_frames(lambda t: depth_from_params(run.kind, maps[t], state.params[t]), len(maps), np.float32,
                        out=maps if in_place else None)


def _refined_depth(run: _Run, full_depth: np.ndarray, state: State, log: dict, moving: np.ndarray, pairs):
    """Each frame's depth corrected by multi-view triangulation on static textured cells; with
    options.polish the cameras are adjusted once more to the corrected depth. Returns the depth
    (corrected in place), the state and the last bundle adjustment's log."""
    options, num, stride = run.options, len(full_depth), run.flow.stride
    usable = run.tex & ~moving[:, ::stride, ::stride]
    full_depth, corrected = correct_depth(full_depth, state.K(), state.poses(), run.gray, usable, run.flow,
                                          seed=options.seed)
    if corrected < num:
        run.warnings.append(f"depth: {num - corrected} frames had too little parallax for a multi-view "
                            "correction and keep the input's shape")
    if options.polish:  # cameras once more against the corrected depth (its shape now fixed)
        grid = full_depth[:, ::stride, ::stride]  # a view: read as float64 point by point
        pairs = resample_values(pairs, grid, stride)
        state = State(R=state.R, t=state.t, params=np.c_[np.ones(num), np.zeros(num)], f=state.f, c=state.c)
        state, log = bundle_adjust(state, SCALE, pairs, refine_focal=run.refine_focal,
                                   depth_weight=options.depth_weight, iterations=max(1, options.ba_iterations // 2))
        full_depth *= state.params[:, :1, None].astype(np.float32)
    return full_depth, state, log


def _release_flow(run: _Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The flow for the scene record (flow_fwd, flow_bwd float16, read from the disk copy frame by
    frame; flow_valid); the disk copy, the backward validity and the grey frames are let go."""
    flow = run.flow
    flow_fwd = stack_frames(flow.fwd.__getitem__, len(flow.fwd), np.float16)
    flow_bwd = stack_frames(flow.bwd.__getitem__, len(flow.bwd), np.float16)
    flow.close()
    run.flow = run.gray = None
    return flow_fwd, flow_bwd, flow.valid


def _to_first_frame_unit(full_depth: np.ndarray, poses: np.ndarray) -> None:
    """Relative depth: divide depth and camera translations (in place) by frame 0's median depth."""
    unit = float(np.median(full_depth[0]))
    full_depth /= unit
    poses[:, :3, 3] /= unit
