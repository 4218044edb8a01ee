"""Insertion training samples from object-removal data.

Object-removal data comes as triples of videos: the object present, the object
removed (with its shadows and reflections), and the object's mask. Turned around,
each triple is an insertion sample:

    input     = removed video (frame 0 replaced by the present frame 0: "frame 0 known")
    mask      = object mask dilated to cover side effects (white = generate)
    reference = the object cut out of a present frame, on white
    target    = present video

Two folder layouts are found anywhere under a root (file names or frame folders match by stem):

  kind folders   <parent>/[<prefix>_]<present>/<clip>.mp4, .../[<prefix>_]<removed>/<clip>.mp4,
                 .../[<prefix>_]<mask>/<clip>.mp4   (ROSE: Env1/Env1_Unedited, Env1_Edited, Env1_Masked)
  sample folders <clip>/<present>.mp4, <clip>/<removed>.mp4, <clip>/<mask>.mp4
                 (each may instead be a folder of frame images)

Extra reference candidates (e.g. generated views of the object) are taken from
`<reference_dir>/<clip id>/*.png` or, in a sample folder, from `<clip>/references/`.

`build_triplets` writes a dataset folder:
  manifest.jsonl            one JSON object per sample (see `build_triplets`)
  dataset.json              the build settings
  samples/<id>/target.mp4, input.mp4, masks.npz (object, region: bool [F, H, W]),
  reference.png (clean cut-out), reference_<k>.png (augmented variants used for training)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import InsertAnywhereError
from ..progress import Progress, report
from ..memory import Selection
from ..video import fit_frame, read_video, snap_size, write_video
from .degrade import Degradation, ReferenceAugment, augment_reference, cutout_on_white, degrade_video

VIDEO_EXTS = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
MANIFEST = "manifest.jsonl"
DATASET_INFO = "dataset.json"
FORMAT_VERSION = 1

# An embedder maps uint8 RGB images [H, W, 3] to L2-normalised features [N, D].
Embedder = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Layout:
    """Names of the three kinds of video (folder names in kind-folder layouts, stems in sample folders)."""

    present: str = "Unedited"
    removed: str = "Edited"
    mask: str = "Masked"
    references: str = "references"

    def __post_init__(self):
        names = [self.present, self.removed, self.mask]
        if len(set(n.lower() for n in names)) != 3 or not all(names):
            raise InsertAnywhereError(f"Layout names {names} must be three different non-empty names.")


LAYOUTS = {"rose": Layout(), "simple": Layout("present", "removed", "mask")}


@dataclass
class TripletSource:
    """One object-removal triple found on disk (each path a video file or a folder of frames)."""

    id: str
    present: Path
    removed: Path
    mask: Path
    references: list[Path] = field(default_factory=list)


# ----------------------------------------------------------------------------- discovery


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in IMAGE_EXTS for p in path.iterdir())


def _media_entries(folder: Path) -> dict[str, Path]:
    """stem -> video file or frame folder, for the media directly inside `folder`."""
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
            out[p.stem] = p
        elif _is_frame_folder(p):
            out[p.name] = p
    return out


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS) \
        if folder.is_dir() else []


def _kind_prefix(name: str, token: str) -> Optional[str]:
    """'' or 'Env1_' when `name` is `token` or `<prefix>_<token>` (case-insensitive), else None."""
    if name.lower() == token.lower():
        return ""
    if name.lower().endswith("_" + token.lower()):
        return name[: len(name) - len(token)]
    return None


def _clip_id(parts: Sequence[str]) -> str:
    """A file-name-safe id from path parts, joined by '__'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "__".join(p for p in parts if p)).strip("_") or "clip"


def find_triplets(root: str | Path, layout: Layout = LAYOUTS["rose"],
                  reference_dir: str | Path | None = None) -> tuple[list[TripletSource], list[str]]:
    """All triples under `root` in either layout.

    Returns (triples sorted by id, problems: one line per clip that lacks a counterpart).
    """
    root = Path(root)
    if not root.is_dir():
        raise InsertAnywhereError(f"Data folder '{root}' does not exist; pass the folder holding the removal data.")
    found: list[TripletSource] = []
    problems: list[str] = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        found += _sample_folder(root, here, layout)
        for name in list(dirnames):
            prefix = _kind_prefix(name, layout.present)
            if prefix is None or _is_frame_folder(here / name):
                continue
            trip, missing = _kind_folders(root, here, prefix, layout)
            found += trip
            problems += missing
    if reference_dir is not None:
        _attach_references(found, Path(reference_dir))
    ids = [t.id for t in found]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InsertAnywhereError(f"Clip ids {dupes[:5]} occur twice under '{root}'; rename the clips.")
    return sorted(found, key=lambda t: t.id), problems


def _sample_folder(root: Path, folder: Path, layout: Layout) -> list[TripletSource]:
    entries = {}
    for p in folder.iterdir():
        if (p.is_file() and p.suffix.lower() in VIDEO_EXTS) or _is_frame_folder(p):
            entries[(p.stem if p.is_file() else p.name).lower()] = p
    kinds = [entries.get(n.lower()) for n in (layout.present, layout.removed, layout.mask)]
    if not all(kinds):
        return []
    refs = _images(folder / layout.references)
    parts = folder.relative_to(root).parts if folder != root else (root.name,)
    return [TripletSource(_clip_id(parts), *kinds, references=refs)]


def _kind_folders(root: Path, parent: Path, prefix: str, layout: Layout) -> tuple[list[TripletSource], list[str]]:
    folders = [parent / (prefix + name) for name in (layout.present, layout.removed, layout.mask)]
    folders = [_case_insensitive(f) for f in folders]
    absent = [str(f) for f in folders if not f.is_dir()]
    if absent:
        return [], [f"'{folders[0]}' has no sibling folder {', '.join(absent)}"]
    present, removed, mask = (_media_entries(f) for f in folders)
    found, problems = [], []
    group = list(parent.relative_to(root).parts)
    if prefix.rstrip("_") and prefix.rstrip("_") != parent.name:
        group.append(prefix.rstrip("_"))
    for stem, path in present.items():
        if stem in removed and stem in mask:
            found.append(TripletSource(_clip_id([*group, stem]), path, removed[stem], mask[stem]))
        else:
            problems.append(f"'{path}' has no matching removed/mask clip named '{stem}'")
    return found, problems


def _case_insensitive(path: Path) -> Path:
    if path.exists() or not path.parent.is_dir():
        return path
    for p in path.parent.iterdir():
        if p.name.lower() == path.name.lower():
            return p
    return path


def _attach_references(triples: list[TripletSource], reference_dir: Path) -> None:
    if not reference_dir.is_dir():
        raise InsertAnywhereError(f"Reference folder '{reference_dir}' does not exist.")
    for t in triples:
        t.references += _images(reference_dir / t.id)
        t.references += [p for p in _images(reference_dir) if p.stem == t.id]


# ----------------------------------------------------------------------------- reading


def read_media(path: Path, max_frames: int, size: Optional[tuple[int, int]] = None,
               max_side: int = 0) -> tuple[np.ndarray, float]:
    """Frames uint8 [F, H, W, 3] and fps of a video file or frame folder, fitted (crop) to `size`
    or, without one, to multiples of 16 with the longer side at most `max_side`."""
    import cv2

    if path.is_dir():
        files = _images(path)[:max_frames]
        if not files:
            raise InsertAnywhereError(f"Frame folder '{path}' holds no images.")
        frames = []
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise InsertAnywhereError(f"Cannot read image '{f}'; re-save it as PNG.")
            frames.append(img[..., ::-1])
        frames, fps = np.stack(frames), 16.0
    else:
        frames, fps = read_video(path, Selection(frame_cap=max_frames, fit="none"))
    if size is None:
        size = snap_size(frames.shape[1], frames.shape[2], 16, max_side)
    return np.stack([fit_frame(f, size, "crop") for f in frames]), fps


def mask_from_frames(frames: np.ndarray, source: str = "mask video") -> np.ndarray:
    """Bool [F, H, W]: a mask video's white pixels (mean channel value above mid-grey).

    Raises when the video is not black and white (e.g. a video with the object greyed out
    rather than a mask): more than a fifth of its pixels in mid-tones.
    """
    grey = frames.astype(np.float32).mean(axis=-1)
    if np.mean((grey > 40) & (grey < 215)) > 0.2:
        raise InsertAnywhereError(
            f"'{source}' is not a black-and-white mask (most pixels are mid-tones). Point --mask at the binary "
            "mask videos (white = object), not at a masked or overlay video.")
    return grey > 127.5


# ----------------------------------------------------------------------------- masks


def _disk(radius: int) -> np.ndarray:
    import cv2

    r = max(1, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def dilate_masks(obj: np.ndarray, fraction: float, min_px: int) -> np.ndarray:
    """Dilate each frame's mask [F, H, W] by max(min_px, fraction * the longer side of its box)."""
    import cv2

    out = np.zeros_like(obj)
    for t, m in enumerate(obj):
        if not m.any():
            continue
        ys, xs = np.nonzero(m)
        side = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        radius = max(min_px, int(round(fraction * side)))
        out[t] = cv2.dilate(m.astype(np.uint8), _disk(radius)) > 0
    return out


def effect_masks(present: np.ndarray, removed: np.ndarray, obj: np.ndarray, threshold: float,
                 reach: float) -> np.ndarray:
    """Side effects (shadows, reflections) [F, H, W]: pixels where present and removed videos
    differ by more than `threshold` (0..255, largest channel), cleaned of speckles, kept only
    within `reach` x the object's size of the object."""
    import cv2

    diff = np.abs(present.astype(np.int16) - removed.astype(np.int16)).max(axis=-1) > threshold
    out = np.zeros_like(obj)
    for t in range(len(obj)):
        if not obj[t].any():
            continue
        d = cv2.morphologyEx(diff[t].astype(np.uint8), cv2.MORPH_OPEN, _disk(1)) > 0
        ys, xs = np.nonzero(obj[t])
        side = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        near = cv2.dilate(obj[t].astype(np.uint8), _disk(max(1, int(round(reach * side))))) > 0
        out[t] = d & near
    return out


# ----------------------------------------------------------------------------- reference choice


def _touches_border(m: np.ndarray) -> bool:
    return bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


def candidate_frames(obj: np.ndarray, clip: range, count: int) -> list[int]:
    """Up to `count` frames whose object is large (at least half the largest area), preferring
    frames whose object does not touch the border, and frames outside `clip` ("other frames")."""
    area = obj.reshape(len(obj), -1).sum(axis=1)
    if area.max() == 0:
        return []
    good = [t for t in range(len(obj)) if area[t] >= 0.5 * area.max()]
    inner = [t for t in good if not _touches_border(obj[t])] or good
    outside = [t for t in inner if t not in clip]
    pool = outside if outside else inner
    if len(pool) <= count:
        return sorted(pool, key=lambda t: -area[t])
    picks = np.linspace(0, len(pool) - 1, count).round().astype(int)
    return sorted({pool[i] for i in picks}, key=lambda t: -area[t])


def choose_reference(candidates: list[tuple[str, np.ndarray]], clip_objects: list[np.ndarray],
                     embedder: Optional[Embedder]) -> tuple[int, Optional[float]]:
    """Index of the candidate (label, image on white) to use, and its similarity score.

    With an embedder the candidate whose feature is closest (cosine) to the mean feature of
    the object cut-outs in the clip wins; without one the first candidate (largest object) wins.
    """
    if not candidates:
        raise InsertAnywhereError("No reference candidate: the object is never visible in the clip.")
    if embedder is None or not clip_objects:
        return 0, None
    cand = np.asarray(embedder([c[1] for c in candidates]), dtype=np.float64)
    target = np.asarray(embedder(clip_objects), dtype=np.float64).mean(axis=0)
    target /= np.linalg.norm(target) + 1e-12
    cand /= np.linalg.norm(cand, axis=1, keepdims=True) + 1e-12
    scores = cand @ target
    best = int(np.argmax(scores))
    return best, float(scores[best])


def load_vision_embedder(path: str | Path, device: str = "cpu") -> Embedder:
    """A local vision backbone (e.g. DINOv2 in transformers format) as an `Embedder`.

    Uses the pooled output, or the CLS token when the model has no pooler. Nothing is downloaded.
    """
    import torch
    from transformers import AutoImageProcessor, AutoModel

    path = Path(path)
    if not (path / "config.json").is_file():
        raise InsertAnywhereError(
            f"Vision model folder '{path}' has no config.json; pass a local transformers model folder "
            "(e.g. facebook/dinov2-base downloaded with its preprocessor_config.json).")
    processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()

    @torch.no_grad()
    def embed(images: Sequence[np.ndarray]) -> np.ndarray:
        inputs = processor(images=list(images), return_tensors="pt").to(device)
        out = model(**inputs)
        pooled = getattr(out, "pooler_output", None)
        feats = pooled if pooled is not None else out.last_hidden_state[:, 0]
        feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy()

    return embed


# ----------------------------------------------------------------------------- building


@dataclass(frozen=True)
class BuildConfig:
    """Settings of `build_triplets`."""

    num_frames: int = 81              # frames per sample (4k+1 for Wan)
    stride: int = 1                   # keep every n-th source frame
    clips_per_video: int = 1          # windows taken from each source video
    max_side: int = 832               # longer side after fitting (multiples of 16)
    max_source_frames: int = 400      # frames decoded per source video
    dilate: float = 0.08              # mask dilation, fraction of the object's box side
    dilate_px: int = 4                # ... and at least this many pixels
    cover_effects: bool = True        # add the present/removed difference near the object
    effect_threshold: float = 16.0    # 0..255 difference counted as a side effect
    effect_reach: float = 1.0         # side effects kept within this many object sizes
    min_object_area: float = 0.001    # frame 0's object must cover this fraction of the frame
    reference_candidates: int = 6     # frames considered for the reference cut-out
    reference_variants: int = 4       # augmented references saved per sample (0: train on the clean one)
    augment: ReferenceAugment = ReferenceAugment()
    degrade: Degradation = Degradation()
    prompt: str = ""
    crf: int = 10                     # H.264 quality of the written videos
    seed: int = 0

    def __post_init__(self):
        if self.num_frames < 1 or (self.num_frames - 1) % 4:
            raise InsertAnywhereError(f"num_frames={self.num_frames} must be 4k+1 (5, 9, ..., 81) for Wan.")
        if self.stride < 1 or self.clips_per_video < 1 or self.max_side < 16:
            raise InsertAnywhereError("stride and clips_per_video must be >= 1 and max_side >= 16.")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class BuildReport:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.written)} samples written, {len(self.skipped)} skipped"


def clip_starts(obj: np.ndarray, cfg: BuildConfig) -> list[int]:
    """Start frames of up to `clips_per_video` windows whose first frame shows the object."""
    span = (cfg.num_frames - 1) * cfg.stride + 1
    area = obj.reshape(len(obj), -1).mean(axis=1)
    valid = [s for s in range(0, len(obj) - span + 1) if area[s] >= cfg.min_object_area]
    if not valid:
        return []
    picks = np.linspace(0, len(valid) - 1, min(cfg.clips_per_video, len(valid))).round().astype(int)
    return sorted({valid[i] for i in picks})


def build_samples(source: TripletSource, cfg: BuildConfig, embedder: Optional[Embedder],
                  rng: np.random.Generator) -> tuple[list[dict], str]:
    """All insertion samples of one triple, in memory, and a note when none could be made.

    Each sample dict holds: id, start, fps, target/input uint8 [F, H, W, 3], object/region bool
    [F, H, W], reference uint8 [H, W, 3], variants (list of (image, params)), reference_source,
    reference_score, degradation.
    """
    present, fps = read_media(source.present, cfg.max_source_frames, max_side=cfg.max_side)
    size = present.shape[1:3]
    removed, _ = read_media(source.removed, cfg.max_source_frames, size)
    obj = mask_from_frames(read_media(source.mask, cfg.max_source_frames, size)[0], str(source.mask))
    n = min(len(present), len(removed), len(obj))
    if max(len(present), len(removed), len(obj)) - n > 1:
        return [], f"{source.id}: frame counts differ (present {len(present)}, removed {len(removed)}, mask {len(obj)})"
    present, removed, obj = present[:n], removed[:n], obj[:n]
    starts = clip_starts(obj, cfg)
    if not starts:
        return [], (f"{source.id}: no {cfg.num_frames}-frame window (stride {cfg.stride}) starts with the object "
                    f"visible ({n} frames decoded)")
    samples = []
    for start in starts:
        clip = range(start, start + (cfg.num_frames - 1) * cfg.stride + 1, cfg.stride)
        samples.append(_one_sample(source, present, removed, obj, clip, cfg, embedder, rng, fps))
    return samples, ""


def _one_sample(source, present, removed, obj, clip: range, cfg: BuildConfig, embedder, rng, fps) -> dict:
    idx = list(clip)
    target, removed_clip, obj_clip = present[idx], removed[idx], obj[idx]
    region = dilate_masks(obj_clip, cfg.dilate, cfg.dilate_px)
    if cfg.cover_effects:
        effects = effect_masks(target, removed_clip, obj_clip, cfg.effect_threshold, cfg.effect_reach)
        region |= dilate_masks(effects, 0.0, max(1, cfg.dilate_px // 2)) | effects
    inputs = removed_clip.copy()
    inputs[0] = target[0]   # frame 0 is known at inference (the inpainted first frame)
    region[0] = False
    inputs, degradation = degrade_video(inputs, rng, cfg.degrade)

    size = target.shape[1:3]
    frames = candidate_frames(obj, clip, cfg.reference_candidates)
    candidates = [(f"image {p.name}", _load_reference_image(p, size)) for p in source.references]
    candidates += [(f"frame {t}", cutout_on_white(present[t], obj[t], size)) for t in frames]
    clip_objects = [cutout_on_white(target[k], obj_clip[k], size)
                    for k in np.linspace(0, len(idx) - 1, 4).round().astype(int) if obj_clip[k].any()]
    best, score = choose_reference(candidates, clip_objects, embedder)
    label, reference = candidates[best]
    variants = []
    if cfg.reference_variants:
        alpha = reference.min(axis=-1) < 250  # the object on the clean white canvas
        for _ in range(cfg.reference_variants):
            variants.append(augment_reference(reference, alpha, size, rng, cfg.augment))
    suffix = f"_{clip.start:05d}" if cfg.clips_per_video > 1 else ""
    return {
        "id": source.id + suffix, "start": clip.start, "fps": fps / cfg.stride, "target": target,
        "input": inputs, "object": obj_clip, "region": region, "reference": reference, "variants": variants,
        "reference_source": label, "reference_score": score, "degradation": degradation,
    }


def _load_reference_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A user-supplied reference (object on white, or RGBA with transparency) fitted on white."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InsertAnywhereError(f"Cannot read reference image '{path}'; use PNG or JPEG.")
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.shape[-1] == 4:
        alpha = img[..., 3] > 127
        rgb = img[..., 2::-1]
    else:
        rgb = img[..., ::-1]
        alpha = rgb.min(axis=-1) < 245
    if not alpha.any():
        raise InsertAnywhereError(f"Reference image '{path}' is blank; it must show the object on white.")
    return cutout_on_white(np.ascontiguousarray(rgb), alpha, size)


def write_sample(out: Path, sample: dict, cfg: BuildConfig, source: TripletSource) -> dict:
    """Write one sample's files under `out`/samples/<id>/ and return its manifest entry."""
    import cv2

    rel = Path("samples") / sample["id"]
    folder = out / rel
    folder.mkdir(parents=True, exist_ok=True)
    write_video(folder / "target.mp4", sample["target"], sample["fps"], crf=cfg.crf)
    write_video(folder / "input.mp4", sample["input"], sample["fps"], crf=cfg.crf)
    np.savez_compressed(folder / "masks.npz", object=sample["object"], region=sample["region"])
    cv2.imwrite(str(folder / "reference.png"), sample["reference"][..., ::-1])
    refs, augments = [], []
    for k, (image, params) in enumerate(sample["variants"]):
        cv2.imwrite(str(folder / f"reference_{k}.png"), image[..., ::-1])
        refs.append((rel / f"reference_{k}.png").as_posix())
        augments.append(params)
    F, H, W = sample["target"].shape[:3]
    return {
        "id": sample["id"],
        "target": (rel / "target.mp4").as_posix(), "input": (rel / "input.mp4").as_posix(),
        "masks": (rel / "masks.npz").as_posix(), "references": refs or [(rel / "reference.png").as_posix()],
        "reference_clean": (rel / "reference.png").as_posix(),
        "num_frames": int(F), "height": int(H), "width": int(W), "fps": float(sample["fps"]),
        "prompt": cfg.prompt, "first_frame_known": True,
        "source": {"id": source.id, "present": str(source.present), "removed": str(source.removed),
                   "mask": str(source.mask), "start": int(sample["start"]), "stride": cfg.stride},
        "reference": {"source": sample["reference_source"], "score": sample["reference_score"],
                      "augment": augments},
        "degradation": sample["degradation"],
    }


def build_triplets(root: str | Path, out: str | Path, cfg: BuildConfig = BuildConfig(),
                   layout: Layout = LAYOUTS["rose"], reference_dir: str | Path | None = None,
                   embedder: Optional[Embedder] = None, limit: int = 0,
                   progress: Optional[Progress] = None) -> BuildReport:
    """Find removal triples under `root` and write an insertion dataset to `out`.

    Appends to an existing dataset built with the same settings (samples already in the
    manifest are skipped), so an interrupted build can be continued.
    """
    out = Path(out)
    sources, problems = find_triplets(root, layout, reference_dir)
    if not sources:
        hint = "; ".join(problems[:3]) or "nothing matched"
        raise InsertAnywhereError(
            f"No (present, removed, mask) triples found under '{root}' with names {layout.present}/"
            f"{layout.removed}/{layout.mask} ({hint}). Set the folder names (--present/--removed/--mask) "
            "or use the 'simple' layout (<clip>/present.mp4, removed.mp4, mask.mp4).")
    if limit:
        sources = sources[:limit]
    out.mkdir(parents=True, exist_ok=True)
    done = _check_existing(out, cfg)
    report_ = BuildReport(skipped=list(problems))
    rng = np.random.default_rng(cfg.seed)
    with open(out / MANIFEST, "a", encoding="utf-8") as manifest:
        for i, source in enumerate(sources):
            if source.id in done:
                report_.skipped.append(f"{source.id}: already in the manifest")
            else:
                samples, note = build_samples(source, cfg, embedder, rng)
                if note:
                    report_.skipped.append(note)
                for sample in samples:
                    manifest.write(json.dumps(write_sample(out, sample, cfg, source)) + "\n")
                    manifest.flush()
                    report_.written.append(sample["id"])
            report(progress, i + 1, len(sources))
    return report_


def _check_existing(out: Path, cfg: BuildConfig) -> set[str]:
    """Source ids already built into `out`; writes dataset.json for a new dataset."""
    info_path = out / DATASET_INFO
    settings = {"format_version": FORMAT_VERSION, "build": cfg.to_json()}
    if not info_path.is_file():
        info_path.write_text(json.dumps(settings, indent=2))
        return set()
    info = json.loads(info_path.read_text())
    if info != json.loads(json.dumps(settings)):
        raise InsertAnywhereError(
            f"'{out}' holds a dataset built with other settings; write to a new folder or delete it first.")
    done = set()
    if (out / MANIFEST).is_file():
        for line in (out / MANIFEST).read_text().splitlines():
            if line.strip():
                done.add(json.loads(line)["source"]["id"])
    return done
