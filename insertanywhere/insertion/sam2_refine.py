"""SAM2 refinement of the projected object masks.

The reprojection gives a geometrically right but ragged mask per frame
(splatted points, depth noise). SAM2's video predictor, seeded with those
masks as mask prompts on keyframes, tracks a clean silhouette between them.
Per frame the two are fused: SAM2 is kept only where it agrees with the
projection (IoU and area checks) and never reaches beyond a band around it;
where SAM2 collapses or drifts the projection wins. Optional occluders
(user points / boxes, or the reconstruction's moving-object masks as seeds)
are tracked as extra SAM2 objects and subtracted.

Model building never instantiates a `_target_` from a file: a config (one of
the sam2 package's own, or a `.yaml` beside the checkpoint for a custom size)
is read as data and checked against a fixed architecture schema
(`sam2_config`), which then calls the known SAM2 classes itself. No Hydra
state is used, so another pack that initialised Hydra for its own configs
cannot break loading (`sam2.build_sam.compose`, which can, is never called).
Frames go to the predictor from memory: no JPEG folder or mp4 is written.

Shapes: frames uint8 [F, H, W, 3]; masks bool [F, H, W].
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import InsertAnywhereError
from ..jsontext import parse_json
from ..progress import Progress, report
from .checkpoints import read_state_dict, require_keys
from .sam2_config import SAM2Config, build_sam2, load_config_file

# (Hiera embed dim, number of Hiera blocks) -> config size suffix
_SIZES = {(96, 12): "t", (96, 16): "s", (112, 24): "b+", (144, 48): "l"}
_SIZE_WORDS = {"tiny": "t", "small": "s", "base_plus": "b+", "base+": "b+", "b+": "b+", "large": "l"}
_REQUIRED = ("image_encoder.trunk.patch_embed.proj.weight", "sam_mask_decoder.iou_token.weight")
_IMAGE_MEAN = (0.485, 0.456, 0.406)
_IMAGE_STD = (0.229, 0.224, 0.225)
# Settings sam2.build_sam applies to video predictors; fill_hole_area needs the CUDA extension, so it stays 0
# (holes are handled by the fusion below).
_VIDEO_OVERRIDES = {
    "sam_mask_decoder_extra_args": {"dynamic_multimask_via_stability": True,
                                    "dynamic_multimask_stability_delta": 0.05,
                                    "dynamic_multimask_stability_thresh": 0.98},
    "binarize_mask_from_pts_for_mem_enc": True,
    "fill_hole_area": 0,
}


@dataclass
class SAM2Model:
    """A loaded SAM2 video predictor plus where it came from."""

    predictor: torch.nn.Module
    name: str
    config: str
    image_size: int
    device: torch.device
    autocast_dtype: Optional[torch.dtype] = None


@dataclass
class RefineResult:
    masks: np.ndarray                     # bool [F, H, W]
    frames: list = field(default_factory=list)  # per frame: {"frame", "source", "iou", "area_ratio"}

    def summary(self) -> dict:
        sources = [f["source"] for f in self.frames]
        return {"frames": len(sources), **{s: sources.count(s) for s in ("sam2", "projection", "empty")},
                "per_frame": self.frames}


# --------------------------------------------------------------------------------------------- loading


PACKAGED_FOLDERS = ("sam2", "sam2.1")  # the model configs; sam2.1_training/ holds training recipes


def packaged_configs() -> list[str]:
    """Config names shipped inside the sam2 package, e.g. 'sam2.1/sam2.1_hiera_l.yaml'."""
    root = _package_config_dir()
    if root is None:
        return []
    return sorted(f"{folder}/{p.name}" for folder in PACKAGED_FOLDERS
                  for p in (root / folder).glob("sam2*_hiera_*.yaml"))


def _package_config_dir() -> Optional[Path]:
    try:
        import importlib.util

        spec = importlib.util.find_spec("sam2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "configs"


def _import_sam2() -> None:
    import importlib

    try:
        importlib.import_module("sam2.sam2_video_predictor")
    except ImportError as exc:
        raise InsertAnywhereError(
            f"The 'sam2' package is not installed ({exc}). Install it with: "
            "SAM2_BUILD_CUDA=0 pip install --no-build-isolation --no-deps sam2==1.1.0 hydra-core iopath"
        ) from exc


def infer_config_name(state_dict: dict, filename: str = "") -> str:
    """Packaged config matching a checkpoint: size from the Hiera shapes, version from the keys."""
    embed = int(state_dict["image_encoder.trunk.patch_embed.proj.weight"].shape[0])
    blocks = len({k.split(".")[3] for k in state_dict if k.startswith("image_encoder.trunk.blocks.")})
    size = _SIZES.get((embed, blocks))
    if size is None:  # unusual shapes: fall back to the size word in the file name
        lowered = filename.lower()
        size = next((v for word, v in _SIZE_WORDS.items() if word in lowered), None)
    if size is None:
        raise InsertAnywhereError(
            f"Cannot tell which SAM2 config fits '{filename}' (Hiera embed {embed}, {blocks} blocks). "
            "Put the matching .yaml next to the checkpoint with the same name, or pick the config explicitly."
        )
    version = "sam2.1" if "no_obj_embed_spatial" in state_dict or "obj_ptr_tpos_proj.weight" in state_dict else "sam2"
    return f"{version}/{version}_hiera_{size}.yaml"


def resolve_config(checkpoint: Path, state_dict: dict, config: str = "auto") -> tuple[SAM2Config, str]:
    """(checked config, description). `config`: 'auto' or one of `packaged_configs()`; never a path.

    auto: the `.yaml` with the checkpoint's name beside it (a custom architecture; read through the same
    schema, so it may only change numbers), else the packaged config read off the weights."""
    options = packaged_configs()
    if config == "auto":
        beside = checkpoint.with_suffix(".yaml")
        if beside.is_file():
            return load_config_file(beside), str(beside)
        name = infer_config_name(state_dict, checkpoint.name)
    elif config in options:
        name = config
    else:
        raise InsertAnywhereError(
            f"SAM2 config {str(config)[:200]!r} is not one of the packaged configs {options} or 'auto'; file paths "
            "are not accepted. For a custom architecture put its .yaml beside the checkpoint in models/sam2 with "
            "the checkpoint's name (e.g. my_sam2.pt + my_sam2.yaml) and choose 'auto'."
        )
    root = _package_config_dir()
    path = root / name if root else None
    if path is None or not path.is_file():
        raise InsertAnywhereError(
            f"SAM2 config '{name}' is not in the installed sam2 package (found {options}); reinstall sam2==1.1.0."
        )
    return load_config_file(path), name


def build_sam2_model(cfg, *, video: bool = True, image_size: Optional[int] = None) -> torch.nn.Module:
    """Build SAM2 from a checked `SAM2Config` (raw config data is checked first) without Hydra.

    video=True builds the video predictor with the same post-processing settings as
    `sam2.build_sam.build_sam2_video_predictor`. `image_size` overrides the working resolution.
    """
    _import_sam2()
    overrides = dict(_VIDEO_OVERRIDES) if video else {}
    if image_size:
        overrides["image_size"] = int(image_size)
    return build_sam2(cfg, video=video, overrides=overrides)


def load_sam2(checkpoint: Union[str, Path], *, config: str = "auto", image_size: int = 0,
              device: Union[str, torch.device] = "cpu", dtype: str = "float32") -> SAM2Model:
    """Load a SAM2 / SAM2.1 checkpoint (.pt from Meta or .safetensors) as a video predictor.

    image_size: working resolution (multiple of 32); 0 keeps the config's (1024 for the real models).
    Lower values (512) make CPU use practical at some loss of boundary detail.
    dtype: "float32", or "bfloat16" / "float16" autocast on CUDA.
    """
    checkpoint = Path(checkpoint)
    if image_size and (image_size % 32 or image_size < 64):
        raise InsertAnywhereError(f"SAM2 working resolution {image_size} must be a multiple of 32 and >= 64 (or 0).")
    state_dict = read_state_dict(checkpoint, "SAM2")
    require_keys(state_dict, _REQUIRED, checkpoint, "a SAM2")
    cfg, config_path = resolve_config(checkpoint, state_dict, config)
    model = build_sam2_model(cfg, image_size=image_size or None)
    state_dict = {k: v.float() for k, v in state_dict.items()}
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        detail = str(exc).split("\n\t")
        raise InsertAnywhereError(
            f"SAM2 checkpoint '{checkpoint.name}' does not fit config '{config_path}' ({len(detail) - 1} problems, "
            f"e.g. {detail[1].strip() if len(detail) > 1 else exc}). Pick the config of the same size and version "
            "(sam2 vs sam2.1), or leave it on 'auto'."
        ) from exc
    device = torch.device(device)
    autocast = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype, "bad")
    if autocast == "bad":
        raise InsertAnywhereError(f"Unknown SAM2 dtype '{dtype}'; use float32, bfloat16 or float16.")
    model = model.to(device).eval()
    model.memory_attention.register_forward_pre_hook(_memory_in_model_dtype, with_kwargs=True)
    return SAM2Model(model, checkpoint.name, config_path, int(model.image_size), device,
                     autocast if device.type == "cuda" else None)


def _memory_in_model_dtype(module, args, kwargs):
    """SAM2 stores mask memories as bfloat16 (its demos run under CUDA autocast). Without autocast, cast
    them back to the weights' dtype so float32 runs (CPU) work."""
    if torch.is_autocast_enabled(next(module.parameters()).device.type):
        return None
    dtype = next(module.parameters()).dtype

    def cast(value):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.to(dtype)
        if isinstance(value, (list, tuple)):
            return type(value)(cast(v) for v in value)
        return value

    return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}


# --------------------------------------------------------------------------------------------- prompts


@dataclass
class OccluderPrompt:
    frame: int
    points: Optional[np.ndarray] = None  # float [N, 2] pixel x, y
    labels: Optional[np.ndarray] = None  # int [N] 1 = occluder, 0 = background
    box: Optional[np.ndarray] = None     # float [4] x0, y0, x1, y1
    obj_id: int = 2


def parse_occluder_prompts(text: str, num_frames: int, size: tuple[int, int]) -> list[OccluderPrompt]:
    """Parse the occluder JSON: a list of {"frame", "points": [[x, y]...], "labels": [1...], "box": [x0,y0,x1,y1],
    "id": n}. Coordinates are pixels of the input frames; entries with the same id are one occluder."""
    text = (text or "").strip()
    if not text:
        return []
    entries = parse_json(text, "The occluder prompt text", '[{"frame": 0, "points": [[120, 80]], "labels": [1]}]')
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise InsertAnywhereError("Occluder prompts must be a JSON list of {frame, points/labels and/or box}.")
    h, w = size
    prompts = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "frame" not in entry:
            raise InsertAnywhereError(f"Occluder prompt {i} needs a 'frame' and 'points' and/or 'box'.")
        frame = entry["frame"]
        if not isinstance(frame, int) or not 0 <= frame < num_frames:
            raise InsertAnywhereError(f"Occluder prompt {i}: frame {frame!r} is outside 0..{num_frames - 1}.")
        prompt = OccluderPrompt(frame=frame, obj_id=2 + int(entry.get("id", 0)))
        if "points" in entry:
            points = np.asarray(entry["points"], dtype=np.float32).reshape(-1, 2)
            labels = np.asarray(entry.get("labels", [1] * len(points)), dtype=np.int32).reshape(-1)
            if len(labels) != len(points) or not np.isin(labels, (0, 1)).all():
                raise InsertAnywhereError(f"Occluder prompt {i}: 'labels' must be 0/1, one per point.")
            prompt.points, prompt.labels = points, labels
        if "box" in entry:
            box = np.asarray(entry["box"], dtype=np.float32).reshape(-1)
            if box.shape != (4,) or box[2] <= box[0] or box[3] <= box[1]:
                raise InsertAnywhereError(f"Occluder prompt {i}: 'box' must be [x0, y0, x1, y1] with x1>x0, y1>y0.")
            prompt.box = box
        if prompt.points is None and prompt.box is None:
            raise InsertAnywhereError(f"Occluder prompt {i} has neither 'points' nor 'box'.")
        coords = np.concatenate([c.reshape(-1, 2) for c in (prompt.points, prompt.box) if c is not None])
        if (coords < 0).any() or (coords[:, 0] > w).any() or (coords[:, 1] > h).any():
            raise InsertAnywhereError(f"Occluder prompt {i} has coordinates outside the {w}x{h} frame.")
        prompts.append(prompt)
    return prompts


# --------------------------------------------------------------------------------------------- refine


def keyframes(masks: np.ndarray, interval: int) -> list[int]:
    """Frames that get a mask prompt: every `interval`-th frame whose mask is non-empty, plus the first
    and last non-empty frames."""
    present = [i for i in range(len(masks)) if masks[i].any()]
    if not present:
        return []
    picked = {present[0], present[-1]}
    picked.update(i for i in present if i % max(1, interval) == 0)
    return sorted(picked)


def _prepare_images(frames: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 [F, H, W, 3] -> normalised float [F, 3, S, S] as SAM2's frame loader makes it."""
    import cv2

    resized = np.stack([cv2.resize(f, (image_size, image_size), interpolation=cv2.INTER_LINEAR) for f in frames])
    images = torch.from_numpy(resized).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(_IMAGE_MEAN)[:, None, None]
    std = torch.tensor(_IMAGE_STD)[:, None, None]
    return (images - mean) / std


@contextlib.contextmanager
def _frames_in_memory(images: torch.Tensor, height: int, width: int) -> Iterator[None]:
    """Make `init_state` take our tensor instead of reading a JPEG folder / mp4."""
    import sam2.sam2_video_predictor as video_predictor

    original = video_predictor.load_video_frames
    video_predictor.load_video_frames = lambda **_: (images, height, width)
    try:
        yield
    finally:
        video_predictor.load_video_frames = original


def track(model: SAM2Model, frames: np.ndarray, mask_prompts: dict[int, dict[int, np.ndarray]],
          point_prompts: Sequence[OccluderPrompt] = (), progress: Optional[Progress] = None
          ) -> dict[int, np.ndarray]:
    """Run the video predictor. mask_prompts: {obj_id: {frame: bool [H, W]}}.

    Returns {obj_id: bool [F, H, W]}; frames never reached stay False.
    """
    num, height, width = frames.shape[:3]
    images = _prepare_images(frames, model.image_size)
    predictor = model.predictor
    autocast = (torch.autocast("cuda", dtype=model.autocast_dtype) if model.autocast_dtype
                else contextlib.nullcontext())
    obj_ids = sorted(set(mask_prompts) | {p.obj_id for p in point_prompts})
    out = {obj: np.zeros((num, height, width), bool) for obj in obj_ids}
    if not obj_ids:
        return out
    with torch.inference_mode(), autocast:
        with _frames_in_memory(images, height, width):
            state = predictor.init_state("<frames in memory>", offload_video_to_cpu=True)
        for obj, per_frame in mask_prompts.items():
            for frame, mask in per_frame.items():
                predictor.add_new_mask(state, frame_idx=frame, obj_id=obj, mask=torch.from_numpy(mask))
        for prompt in point_prompts:
            predictor.add_new_points_or_box(
                state, frame_idx=prompt.frame, obj_id=prompt.obj_id,
                points=None if prompt.points is None else torch.from_numpy(prompt.points),
                labels=None if prompt.labels is None else torch.from_numpy(prompt.labels),
                box=None if prompt.box is None else torch.from_numpy(prompt.box),
            )
        starts = [f for per in mask_prompts.values() for f in per] + [p.frame for p in point_prompts]
        first = min(starts)
        total = num + first
        done = 0
        for reverse in (False, True):
            if reverse and first == 0:
                break
            for frame, ids, logits in predictor.propagate_in_video(state, start_frame_idx=first, reverse=reverse):
                for index, obj in enumerate(ids):
                    out[obj][frame] = (logits[index, 0] > 0).cpu().numpy()
                done += 1
                report(progress, min(done, total), total)
        predictor.reset_state(state)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    if radius <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def fuse(projected: np.ndarray, sam: np.ndarray, *, min_iou: float = 0.6, area_range: tuple[float, float] = (0.6, 1.6),
         band: int = 8) -> tuple[np.ndarray, list[dict]]:
    """Per frame: SAM2 clipped to a `band`-pixel ring around the projection when it agrees
    (IoU >= min_iou and area ratio in area_range), else the projection; empty where the projection is."""
    fused = np.zeros_like(projected)
    info = []
    for i, (proj, seg) in enumerate(zip(projected, sam)):
        area = int(proj.sum())
        if area == 0:
            info.append({"frame": i, "source": "empty", "iou": None, "area_ratio": None})
            continue
        iou, ratio = _iou(proj, seg), float(seg.sum()) / area
        agrees = iou >= min_iou and area_range[0] <= ratio <= area_range[1]
        fused[i] = (seg & _dilate(proj, band)) if agrees else proj
        info.append({"frame": i, "source": "sam2" if agrees else "projection", "iou": round(iou, 4),
                     "area_ratio": round(ratio, 4)})
    return fused, info


def refine_masks(model: SAM2Model, frames: np.ndarray, projected: np.ndarray, *,
                 keyframe_interval: int = 8, min_iou: float = 0.6, area_range: tuple[float, float] = (0.6, 1.6),
                 band: int = 8, moving: Optional[np.ndarray] = None, occluder_prompts: str = "",
                 progress: Optional[Progress] = None) -> RefineResult:
    """Refine projected masks [F, H, W] with SAM2 over frames [F, H, W, 3].

    moving: optional bool [F, H, W] masks of moving things, tracked as occluders (seeded on keyframes).
    occluder_prompts: JSON of user points / boxes (see `parse_occluder_prompts`).
    Occluders are subtracted from the fused object mask.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InsertAnywhereError(f"SAM2 refine needs uint8 frames [F, H, W, 3], got {frames.dtype} {frames.shape}.")
    if projected.shape != frames.shape[:3]:
        raise InsertAnywhereError(
            f"Masks {projected.shape} do not match the frames {frames.shape[:3]}; pass the masks made for these frames."
        )
    if moving is not None and moving.shape != projected.shape:
        raise InsertAnywhereError(f"Moving masks {moving.shape} do not match the frames {projected.shape}.")
    projected = projected.astype(bool)
    prompts = parse_occluder_prompts(occluder_prompts, len(frames), frames.shape[1:3])
    keys = keyframes(projected, keyframe_interval)
    mask_prompts: dict[int, dict[int, np.ndarray]] = {}
    if keys:
        mask_prompts[1] = {k: projected[k] for k in keys}
    if moving is not None:
        seeds = {k: moving[k].astype(bool) for k in keyframes(moving.astype(bool), keyframe_interval)}
        if seeds:
            mask_prompts[2 + 1000] = seeds  # an id no user prompt uses
    if not mask_prompts and not prompts:
        return RefineResult(np.zeros_like(projected), [{"frame": i, "source": "empty", "iou": None,
                                                        "area_ratio": None} for i in range(len(projected))])
    tracked = track(model, frames, mask_prompts, prompts, progress)
    sam = tracked.get(1, np.zeros_like(projected))
    fused, info = fuse(projected, sam, min_iou=min_iou, area_range=area_range, band=band)
    occluders = [m for obj, m in tracked.items() if obj != 1]
    if occluders:
        fused &= ~np.logical_or.reduce(occluders)
    return RefineResult(fused, info)
