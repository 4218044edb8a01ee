"""The mask pipeline end to end, as the CLI and the bench run it.

  run_masks(video, placement, out, object_mesh=... | object_image=... + object_mask=..., depth=, intrinsics=)
      object to 3D -> decode -> reconstruct -> place -> propagate -> reproject -> write
  masks_from_scene(scene, obj, placement)  the stages after reconstruction, in memory (placement parsed)

Output folder: visible/00000.png ... and amodal/00000.png ... (0/255, full resolution, one per
frame), anchor.mp4 (frames with the object painted in), preview.png (frame 0 with the object),
track.json (per-frame world_from_object), timings.json (seconds per stage).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Union

import numpy as np

from ..errors import InsertAnywhereError
from ..jsontext import parse_json
from ..memory import SOURCE_FRAMES, Selection
from ..progress import Progress, timed
from .intrinsics import check_intrinsics
from .object3d import MAX_FACES, Object3D, load_mesh, object_from_image
from .options import MaskOptions
from .placement import PlacedObject, Placement, SurfaceFrame, check_anchor, parse_placement, place_object
from .vertical import scene_lines, use_upright
from .propagate import propagate
from .reproject import reproject
from .scene import ObjectTrack, SceneRecord
from .scene_cache import SceneCache, reconstruct_cached

# The CLI passes a factory: label -> progress callback (one bar per stage).
StageProgress = Callable[[str], Progress]
PathLike = Union[str, Path]
TRACK_FORMAT_VERSION = 2  # track.json; 1 (no format_version key) named the cameras world_to_camera


@dataclass
class MaskResult:
    """Masks bool [F, H, W], anchor video uint8 [F, H, W, 3], preview uint8 [H, W, 3], and what made them."""

    visible: np.ndarray
    amodal: np.ndarray
    anchor: np.ndarray
    preview: np.ndarray
    track: ObjectTrack
    surface: SurfaceFrame
    placement: Placement
    scene: SceneRecord
    obj: Object3D
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)  # every warning of the run, in stage order (see run_warnings)

    def summary(self) -> str:
        seen = self.visible.any(axis=(1, 2))
        moved = int(self.track.moving.sum())
        return (f"{len(self.visible)} frames, object visible in {int(seen.sum())}, support moving in {moved}, "
                f"up from {self.surface.up_source}, {self.timings.get('total', 0.0):.1f} s")


def load_object(object_mesh: Optional[PathLike] = None, object_image: Optional[PathLike] = None,
                object_mask: Optional[PathLike] = None, max_faces: int = MAX_FACES) -> Object3D:
    """An Object3D from a mesh file (simplified to max_faces triangles), or from a reference
    image + mask (the image's alpha if no mask)."""
    if (object_mesh is None) == (object_image is None):
        raise InsertAnywhereError("Give exactly one object: a mesh file, or a reference image with its mask.")
    if object_mesh is not None:
        return load_mesh(object_mesh, max_faces)
    image = _read_image(object_image, "RGBA")
    if object_mask is not None:
        mask = _read_image(object_mask, "L")
        if mask.shape != image.shape[:2]:
            raise InsertAnywhereError(
                f"The object mask '{object_mask}' is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}; give a mask of the same size."
            )
    elif image[..., 3].min() < 255:
        mask = image[..., 3]
    else:
        raise InsertAnywhereError(
            f"'{object_image}' has no alpha channel; give its mask too (white = object, black = background)."
        )
    return object_from_image(image[..., :3], mask)


def _read_image(path: PathLike, mode: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InsertAnywhereError(f"Image '{path}' does not exist; check the path.")
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert(mode))
    except (UnidentifiedImageError, OSError) as exc:
        raise InsertAnywhereError(f"Cannot read image '{path}': {exc}. Use a PNG or JPEG.") from exc


def load_placement(placement: Union[PathLike, dict, Placement]) -> Placement:
    """A placement from a JSON file path, JSON text, a dict, or a Placement."""
    if isinstance(placement, Path) or (isinstance(placement, str) and not placement.lstrip().startswith("{")):
        path = Path(placement)
        if not path.is_file():
            raise InsertAnywhereError(f"Placement file '{path}' does not exist; check the path.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InsertAnywhereError(f"Cannot read placement file '{path}': {exc}.") from exc
        return parse_placement(text)
    return parse_placement(placement)


NPZ_HOWTO = ("Save an .npz with one array under key 'depth' (metric camera z > 0) or 'disparity' (relative "
             "inverse depth, larger = nearer), shaped [frames, H, W]: numpy.savez('depth.npz', depth=maps).")


def load_depth(depth: Union[PathLike, Mapping[str, np.ndarray]]) -> dict:
    """{'depth': metric [F, H, W]} or {'disparity': relative inverse depth [F, H, W]} from an .npz or a mapping."""
    if isinstance(depth, (str, Path)):
        path = Path(depth)
        if not path.is_file():
            raise InsertAnywhereError(f"Depth file '{path}' does not exist; check the path.")
        where = f"'{path}'"
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as exc:  # zip / npz errors vary by numpy version
            raise InsertAnywhereError(f"Cannot read depth file '{path}': {exc}. {NPZ_HOWTO}") from exc
        if isinstance(data, np.ndarray):  # a .npy: one unnamed array
            # Refused rather than guessed: only the key says whether the values are metric camera z
            # or relative inverse depth, and taking one for the other gives wrong masks silently.
            raise InsertAnywhereError(
                f"Depth file '{path}' is a .npy, a single array without a name, so it does not say whether it "
                f"holds metric depth or disparity. {NPZ_HOWTO}")
        try:
            with data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:
            raise InsertAnywhereError(f"Cannot read depth file '{path}': {exc}. {NPZ_HOWTO}") from exc
    else:
        where = "the depth input"
        arrays = dict(depth)
    keys = [k for k in ("depth", "disparity") if k in arrays]
    if len(keys) != 1:
        raise InsertAnywhereError(
            f"The depth input has keys {sorted(arrays)}; it needs exactly one of 'depth' (metric camera z) "
            "or 'disparity' (relative inverse depth), shaped [frames, H, W]."
        )
    values = np.asarray(arrays[keys[0]])
    if values.ndim != 3:
        raise InsertAnywhereError(f"'{keys[0]}' has shape {values.shape}; it must be [frames, H, W].")
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise InsertAnywhereError(f"'{keys[0]}' in {where} holds {values.dtype} values; it must be real numbers.")
    from .reconstruct.inputs import check_maps  # lazily: the reconstruction package is heavy to import

    check_maps(values, keys[0], where)
    return {keys[0]: values}


K_EXAMPLE = '{"K": [[500, 0, 320], [0, 500, 240], [0, 0, 1]]} (or the bare [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])'


def load_intrinsics(intrinsics: Union[PathLike, np.ndarray, list, dict]) -> np.ndarray:
    """A 3x3 K from a JSON file, JSON text, a dict or an array, in either form:
    {"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]} or the bare [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].

    The form is checked here (masks.intrinsics.check_intrinsics); the checks that need the
    frame size (principal point inside the image, field of view) run when the video is known.
    """
    where = "The intrinsics"
    if isinstance(intrinsics, str) and intrinsics.lstrip()[:1] in ("{", "["):
        intrinsics = parse_json(intrinsics, "The intrinsics text", K_EXAMPLE)
    elif isinstance(intrinsics, (str, Path)):
        path = Path(intrinsics)
        if not path.is_file():
            raise InsertAnywhereError(f"Intrinsics file '{path}' does not exist; check the path.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InsertAnywhereError(f"Cannot read intrinsics file '{path}': {exc}.") from exc
        where = f"The intrinsics in '{path}'"
        intrinsics = parse_json(text, f"Intrinsics file '{path}'", K_EXAMPLE)
    if isinstance(intrinsics, dict):
        if "K" not in intrinsics:
            raise InsertAnywhereError(
                f"{where} have keys {sorted(map(str, intrinsics))[:8]}; give the 3x3 matrix under key \"K\", "
                f"like {K_EXAMPLE}.")
        intrinsics = intrinsics["K"]
    return check_intrinsics(intrinsics, where)


def masks_from_scene(scene: SceneRecord, obj: Object3D, placement: Placement,
                     options: Optional[MaskOptions] = None,
                     *, progress: Optional[StageProgress] = None) -> MaskResult:
    """Place, propagate and reproject on a reconstructed scene.

    options: MaskOptions (occlusion, propagation, splat_px, upright; max_faces is for loading the
    object, see run_masks); None: the defaults. options.CAMERA_ONLY (no occlusion, no propagation)
    is the camera-only ablation.
    placement: a parsed Placement (parse_placement / load_placement), so the JSON is read once.
    """
    if not isinstance(placement, Placement):
        raise InsertAnywhereError(f"masks_from_scene takes a Placement, got {type(placement).__name__}; "
                                  "read the JSON with load_placement first.")
    options = MaskOptions() if options is None else options
    timings: dict[str, float] = {}
    with timed(timings, "place"):
        world_from_object, surface, preview = place_object(
            placement, obj, scene.frames[0], scene.depth[0], scene.K, scene.camera_from_world[0],
            scene_lines(scene) if use_upright(scene, options.upright) else None, progress=_stage(progress, "place"))
    with timed(timings, "propagate"):
        track = propagate(scene, PlacedObject(placement, world_from_object, surface), enabled=options.propagation,
                          progress=_stage(progress, "propagate"))
    with timed(timings, "reproject"):
        frames = reproject(scene, obj, track, occlusion=options.occlusion, splat_px=options.splat_px,
                           progress=_stage(progress, "reproject"))
    warnings = run_warnings(scene, obj, track, frames.visible, frames.amodal)
    return MaskResult(frames.visible, frames.amodal, frames.anchor, preview, track, surface, placement,
                      scene, obj, timings, warnings)


# An object seen in fewer than this fraction of the frames is worth a warning: the masks (and so the
# insertion) then cover only part of the video, which is rarely what was meant.
MIN_VISIBLE_FRACTION = 0.5


def coverage_warnings(visible: np.ndarray, amodal: np.ndarray) -> list[str]:
    """Warnings about where the placed object shows up; InsertAnywhereError when it is in no frame at all."""
    num = len(amodal)
    if num and not amodal.any():
        raise InsertAnywhereError(
            f"The placed object covers no pixel in any of the {num} frames (its masks would be empty): it is too "
            "small or out of view. Check height_px (the object's height in frame 0, in pixels) and the anchor.")
    seen = np.flatnonzero(visible.reshape(num, -1).any(axis=1)) if num else np.zeros(0, int)
    if num and len(seen) == 0:
        return [f"the object is hidden behind the scene in all {num} frames (visible mask empty, amodal mask "
                "not); move the anchor in front of the occluders"]
    if num and len(seen) < MIN_VISIBLE_FRACTION * num:
        return [f"the object is visible in only {len(seen)} of {num} frames (frames {seen[0]}..{seen[-1]}); "
                "the masks are empty in the others"]
    return []


def run_warnings(scene: SceneRecord, obj: Object3D, track: ObjectTrack, visible: np.ndarray,
                 amodal: np.ndarray) -> list[str]:
    """Every warning of a mask run: reconstruction, object, propagation, then where the object shows up."""
    return (grouped(scene.warnings) + list(obj.warnings)
            + list(track.warnings)
            + coverage_warnings(visible, amodal))


_LOST_POSE = re.compile(r"^frame (\d+): (camera pose not found.*), kept frame \d+'s$")


def grouped(warnings) -> list[str]:
    """The reconstruction's per-frame 'camera pose not found' warnings as one line (they came 32 at a time)."""
    lost = [(int(m.group(1)), m.group(2)) for m in map(_LOST_POSE.match, warnings) if m]
    if len(lost) < 2:
        return list(warnings)
    frames = [t for t, _ in lost]
    shown = ", ".join(map(str, frames[:8])) + (", ..." if len(frames) > 8 else "")
    rest = [w for w in warnings if not _LOST_POSE.match(w)]
    return [f"{lost[0][1]} in {len(frames)} frames ({shown}); each kept the previous frame's pose"] + rest


def warning_summary(warnings: list[str]) -> str:
    """The last line of every run: 'no warnings' or 'N warnings: first; second; ...'."""
    if not warnings:
        return "no warnings"
    return f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}: " + "; ".join(warnings)


def _stage(progress: Optional[StageProgress], label: str) -> Optional[Progress]:
    return None if progress is None else progress(label)


def run_masks(video: PathLike, placement: Union[PathLike, dict, Placement], out: Optional[PathLike] = None, *,
              object_mesh: Optional[PathLike] = None, object_image: Optional[PathLike] = None,
              object_mask: Optional[PathLike] = None,
              depth: Union[PathLike, Mapping[str, np.ndarray], None] = None,
              intrinsics: Union[PathLike, np.ndarray, None] = None,
              selection: Selection = SOURCE_FRAMES, options: Optional[MaskOptions] = None,
              memory_budget: Optional[float] = None,
              progress: Optional[StageProgress] = None, cache: Optional[SceneCache] = None,
              log: Optional[Callable[[str], None]] = None) -> MaskResult:
    """The whole mask pipeline on files; writes OUT (see the module doc) when `out` is given.

    depth: .npz (or mapping) with 'depth' (metric) or 'disparity' (relative inverse depth),
    [frames, H, W] covering at least the used frames of the source video (start / stride pick the
    same maps); intrinsics: K.json or a 3x3 array for the source video's pixels (both are fitted
    like the frames when fit crops or resizes). Without depth the reconstruction works from the video alone.
    selection (memory.Selection: start, stride, frame_cap, max_side, fit, multiple, frame_count)
    picks and fits the frames as the Load Video node does (video.read_video); the default keeps
    every frame at the source size. options: MaskOptions, the knobs of the later stages (max_faces
    when loading the object, the rest as in masks_from_scene). memory_budget: GiB the run may
    use (None / 0: from the available memory, see insertanywhere.memory); a selection that would
    not fit is refused before decoding, naming the knob values that would. Every input (object,
    placement, anchor) is checked before the reconstruction; log(message) hears about a simplified
    mesh. cache: a scene_cache.SceneCache to reuse the reconstruction of the same frames and inputs
    (its warnings join the scene's).
    """
    options = MaskOptions() if options is None else options
    total_start = time.perf_counter()
    timings: dict[str, float] = {}
    plan = load_placement(placement)  # validate the cheap inputs before the expensive stages
    depth_input = load_depth(depth) if depth is not None else {}
    K = load_intrinsics(intrinsics) if intrinsics is not None else None
    with timed(timings, "object3d"):
        obj = load_object(object_mesh, object_image, object_mask, options.max_faces)
    if log is not None:
        for message in obj.warnings:
            log(message)
    with timed(timings, "decode"):
        frames, fps = _decode(video, selection, progress=_stage(progress, "decode"),
                              memory_budget=memory_budget, with_depth=bool(depth_input))
    plan, K = _fit_to_frames(video, plan, K, frames.shape[1:3], selection.fit)
    depth_input = {key: _select_maps(values, len(frames), selection, frames.shape[1:3])
                   for key, values in depth_input.items()}
    with timed(timings, "reconstruct"):
        scene, _ = reconstruct_cached(cache, frames, fps=fps, depth_input=depth_input, K=K,
                                      progress=_stage(progress, "reconstruct"))
    result = masks_from_scene(scene, obj, plan, options, progress=progress)
    timings.update(result.timings)
    if out is not None:
        with timed(timings, "write"):
            write_outputs(result, out, fps)
    timings["total"] = time.perf_counter() - total_start
    result.timings = timings
    if out is not None:
        _write_json(Path(out) / "timings.json", {k: round(v, 4) for k, v in timings.items()})
    return result


def _decode(video: PathLike, selection: Selection, *, progress: Optional[Progress], memory_budget: Optional[float],
            with_depth: bool):
    """(frames uint8 [F, H, W, 3], fps) as the Load Video node reads them, refused before decoding
    when they would not fit the memory budget."""
    from .. import memory
    from ..video import read_video

    budget = memory.budget(memory_budget, with_depth=with_depth)
    return read_video(video, selection, progress=progress, memory=budget)


def _fit_to_frames(video: PathLike, plan: Placement, K: Optional[np.ndarray], size: tuple[int, int],
                   fit: str) -> tuple[Placement, Optional[np.ndarray]]:
    """The placement and K, given in the source video's pixels, fitted like the frames (size
    (H, W)); the anchor is then checked against the frames."""
    from ..video import fit_intrinsics, fit_point, fit_transform, probe

    if fit != "none":
        info = probe(video)
        source = (info.height, info.width)
        if source != size:
            if K is not None:
                K = fit_intrinsics(K, source, size, fit)
            plan = dataclasses.replace(plan, anchor=fit_point(plan.anchor, source, size, fit),
                                       height_px=plan.height_px * fit_transform(source, size, fit)[1])
    check_anchor(plan, size)
    return plan, K


def _select_maps(values: np.ndarray, num_frames: int, selection: Selection, size: tuple[int, int]) -> np.ndarray:
    """The depth (or disparity) maps of the selected frames, fitted like them."""
    from ..video import fit_frame

    start, stride, fit = selection.start, selection.stride, selection.fit
    last = start + (num_frames - 1) * stride  # the last source frame used
    if len(values) <= last:
        raise InsertAnywhereError(
            f"The depth input has {len(values)} frames but the video has {num_frames} selected frames, "
            f"up to frame {last}; give one depth map per video frame (or lower --frame-cap)."
        )
    values = values[start:last + 1:stride]
    if fit != "none":
        values = np.stack([fit_frame(np.asarray(m, np.float32), size, fit) for m in values])
    return values


def write_outputs(result: MaskResult, out: PathLike, fps: float) -> Path:
    """Write masks, anchor video, preview and track into `out` (see the module doc)."""
    import cv2

    from ..video import write_video

    out = Path(out)
    jobs = []
    for name, masks in (("visible", result.visible), ("amodal", result.amodal)):
        (out / name).mkdir(parents=True, exist_ok=True)
        jobs += [(out / name / f"{t:05d}.png", mask) for t, mask in enumerate(masks)]

    def write_png(job) -> None:
        path, mask = job
        if not cv2.imwrite(str(path), mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
            raise InsertAnywhereError(f"Cannot write '{path}'; check that the output folder is writable.")

    # PNG encoding releases the GIL: write the masks while the video encodes.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = pool.map(write_png, jobs)
        write_video(out / "anchor.mp4", result.anchor, fps)
        list(pending)
    cv2.imwrite(str(out / "preview.png"), result.preview[..., ::-1])
    _write_json(out / "track.json", {
        "format_version": TRACK_FORMAT_VERSION,
        "world_from_object": np.round(result.track.world_from_object, 6).tolist(),
        "camera_from_world": np.round(result.scene.camera_from_world.astype(np.float64), 6).tolist(),
        "K": np.asarray(result.scene.K, np.float64).tolist(),
        "placement": result.placement.to_dict(),
        "support": result.track.support_count.tolist(),
        "moving": result.track.moving.tolist(),
        "warnings": list(result.warnings),
    })
    return out


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
