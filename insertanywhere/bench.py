"""Benchmark of the mask pipeline on ground-truth scene bundles (docs/FORMATS.md, Scene bundle).

Every scene folder (scene.mp4, scene.json, object.ply, depth.npz, depth_mono.npz, gt/...) is run
through the same `run_masks` as the CLI, in up to three modes:
  oracle  depth.npz (metric) and the true K
  mono    depth_mono.npz (relative inverse depth), K not given
  none    the video alone
Each run is scored as docs/FORMATS.md says (IoU of visible masks with gt/visible: mean, min, and mean over
frames where the object is partly occluded) and compared with the camera-only ablation (no
occlusion test, no propagation) on the same reconstruction.

Speed is a ratio to a floor measured in the same run, just before each pipeline run on the same
video: decoding it plus OpenCV's DIS optical flow (MEDIUM preset) on every consecutive pair of frames
at full resolution. `seconds` is the wall time of the whole `run_masks` call (decode to write).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from .console import report_warnings
from .errors import InsertAnywhereError
from .jsontext import parse_json
from .masks.options import CAMERA_ONLY
from .masks.pipeline import masks_from_scene, run_masks

MODES = ("oracle", "mono", "none")
OCCLUDED_SHARE = 0.9  # a frame is occluded when the visible area is below this share of the amodal area
STAGES = ("decode", "reconstruct", "object3d", "place", "propagate", "reproject", "write", "total")


def frame_ious(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-frame IoU [F] of bool masks [F, H, W]; a frame empty in both counts as 1."""
    if pred.shape != gt.shape:
        raise InsertAnywhereError(f"Predicted masks {pred.shape} and ground truth {gt.shape} differ in shape.")
    inter = (pred & gt).sum(axis=(1, 2))
    union = (pred | gt).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def score(pred: np.ndarray, gt_visible: np.ndarray, gt_amodal: np.ndarray) -> dict:
    """Scoring of a scene bundle (docs/FORMATS.md): {'mean', 'min', 'occluded' (None without occluded frames),
    'n_occluded'}."""
    ious = frame_ious(pred, gt_visible)
    occluded = occluded_frames(gt_visible, gt_amodal)
    return {
        "mean": float(ious.mean()),
        "min": float(ious.min()),
        "occluded": float(ious[occluded].mean()) if occluded.any() else None,
        "n_occluded": int(occluded.sum()),
    }


def occluded_frames(gt_visible: np.ndarray, gt_amodal: np.ndarray) -> np.ndarray:
    """bool [F]: the object is partly occluded (visible area below OCCLUDED_SHARE of the amodal area)."""
    return gt_visible.sum(axis=(1, 2)) < OCCLUDED_SHARE * gt_amodal.sum(axis=(1, 2))


def read_masks(folder: Path, count: int) -> np.ndarray:
    """bool [count, H, W] from folder/00000.png ... (on where >= 128)."""
    import cv2

    masks = []
    for t in range(count):
        path = folder / f"{t:05d}.png"
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise InsertAnywhereError(f"Ground-truth mask '{path}' is missing or unreadable; the bundle is incomplete.")
        masks.append(mask >= 128)
    return np.stack(masks)


def scene_dirs(scenes: Path) -> list[Path]:
    scenes = Path(scenes)
    if not scenes.is_dir():
        raise InsertAnywhereError(f"Scenes folder '{scenes}' does not exist; give the folder holding the bundles.")
    found = sorted(p for p in scenes.iterdir() if (p / "scene.json").is_file())
    if not found:
        raise InsertAnywhereError(f"No scene bundles (folders with scene.json) in '{scenes}'.")
    return found


def read_meta(folder: Path) -> dict:
    """scene.json with the keys the bench needs (placement, intrinsics)."""
    path = folder / "scene.json"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InsertAnywhereError(f"Cannot read '{path}': {exc}.") from exc
    meta = parse_json(text, f"'{path}'", "the scene.json of a scene bundle (docs/FORMATS.md)")
    missing = [k for k in ("placement", "intrinsics") if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise InsertAnywhereError(
            f"'{path}' lacks {missing}; the bundle does not follow the scene bundle layout of docs/FORMATS.md.")
    return meta


def _mode_inputs(folder: Path, meta: dict, mode: str) -> dict:
    if mode == "oracle":
        return {"depth": folder / "depth.npz", "intrinsics": np.asarray(meta["intrinsics"], np.float64)}
    if mode == "mono":
        return {"depth": folder / "depth_mono.npz"}
    if mode == "none":
        return {}
    raise InsertAnywhereError(f"Unknown bench mode '{mode}'; use some of {', '.join(MODES)}.")


def floor_seconds(video: Path) -> float:
    """Wall seconds to decode `video` and run DIS optical flow (MEDIUM) on its consecutive frame pairs
    at full resolution: the speed floor that bench timings are divided by."""
    import cv2

    from .video import read_video

    started = time.perf_counter()
    frames, _ = read_video(video)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    previous = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    for frame in frames[1:]:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        dis.calc(previous, gray, None)
        previous = gray
    return time.perf_counter() - started


def run_scene(folder: Path, mode: str, out: Optional[Path] = None, ablation: bool = True) -> dict:
    """One scene in one mode: a result row (scores, camera-only scores, timings, the speed floor,
    per-frame IoUs, warnings or error)."""
    row = {"scene": folder.name, "mode": mode}
    try:
        meta = read_meta(folder)
        floor = floor_seconds(folder / "scene.mp4")
        started = time.perf_counter()
        result = run_masks(folder / "scene.mp4", meta["placement"], out / folder.name / mode if out else None,
                           object_mesh=folder / "object.ply", **_mode_inputs(folder, meta, mode))
        row["seconds"] = round(time.perf_counter() - started, 3)
    except InsertAnywhereError as exc:
        row["error"] = str(exc)
        return row
    row["floor_seconds"] = round(floor, 3)
    row["x_floor"] = round(row["seconds"] / max(floor, 1e-6), 2)
    count = len(result.visible)
    gt_visible = read_masks(folder / "gt" / "visible", count)
    gt_amodal = read_masks(folder / "gt" / "amodal", count)
    row.update(score(result.visible, gt_visible, gt_amodal))
    row["frame_iou"] = [round(float(x), 4) for x in frame_ious(result.visible, gt_visible)]
    row["frame_occluded"] = occluded_frames(gt_visible, gt_amodal).tolist()
    row["amodal_mean"] = float(frame_ious(result.amodal, gt_amodal).mean())
    if ablation:
        started = time.perf_counter()
        camera_only = masks_from_scene(result.scene, result.obj, result.placement, CAMERA_ONLY)
        row["camera_only"] = score(camera_only.visible, gt_visible, gt_amodal)
        row["camera_only"]["seconds"] = round(time.perf_counter() - started, 3)
    row["frames"] = count
    row["timings"] = {k: round(v, 3) for k, v in result.timings.items()}
    row["moving_frames"] = int(result.track.moving.sum())
    row["warnings"] = list(result.warnings)
    return row


def run_bench(scenes: Path, modes: Sequence[str] = MODES, out: Optional[Path] = None,
              ablation: bool = True, echo: bool = False) -> list[dict]:
    """Run every scene bundle under `scenes` in every mode; rows as in `run_scene`.

    With `out`, each run's outputs go to out/<scene>/<mode>/ and the table to results.md/json.
    """
    for mode in modes:
        _mode_inputs(Path("."), {"intrinsics": np.eye(3)}, mode)  # reject unknown modes up front
    rows = []
    for folder in scene_dirs(scenes):
        for mode in modes:
            rows.append(run_scene(folder, mode, Path(out) if out else None, ablation))
            if echo:
                print(format_row(rows[-1]), flush=True)
    if out is not None:
        write_results(rows, Path(out))
    return rows


def _fmt(value: Optional[float]) -> str:
    return "  -  " if value is None else f"{value:.3f}"


HEADER = (f"{'scene':<18} {'mode':<7} {'mean':>6} {'min':>6} {'occ':>6} {'n_occ':>5} | "
          f"{'cam-only mean':>13} {'occ':>6} | {'total s':>7} {'floor s':>7} {'x floor':>7}  stage seconds")


def format_row(row: dict) -> str:
    head = f"{row['scene']:<18} {row['mode']:<7}"
    if "error" in row:
        return f"{head} failed: {row['error']}"
    cam = row.get("camera_only", {})
    t = row["timings"]
    stages = " ".join(f"{k}={t[k]:.2f}" for k in STAGES[:-1] if k in t)
    return (f"{head} {_fmt(row['mean']):>6} {_fmt(row['min']):>6} {_fmt(row['occluded']):>6} {row['n_occluded']:>5} | "
            f"{_fmt(cam.get('mean')):>13} {_fmt(cam.get('occluded')):>6} | {row['seconds']:7.2f} "
            f"{row['floor_seconds']:7.2f} {row['x_floor']:7.2f}  {stages}")


def format_table(rows: Iterable[dict]) -> str:
    return "\n".join([HEADER, "-" * len(HEADER)] + [format_row(r) for r in rows])


def write_results(rows: list[dict], out: Path) -> tuple[Path, Path]:
    """results.json (all fields) and results.md (the table) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "results.json"
    json_path.write_text(json.dumps(rows, indent=1))
    md_path = out / "results.md"
    lines = ["| scene | mode | mean IoU | min IoU | occluded IoU | camera-only mean | camera-only occluded | "
             "total s | floor s | x floor | reconstruct s | place+propagate+reproject s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['scene']} | {r['mode']} | failed: {r['error']} | | | | | | | | | |")
            continue
        t, cam = r["timings"], r.get("camera_only", {})
        ours = sum(t.get(k, 0.0) for k in ("place", "propagate", "reproject"))
        lines.append(f"| {r['scene']} | {r['mode']} | {_fmt(r['mean'])} | {_fmt(r['min'])} | {_fmt(r['occluded'])} | "
                     f"{_fmt(cam.get('mean'))} | {_fmt(cam.get('occluded'))} | {r['seconds']:.2f} | "
                     f"{r['floor_seconds']:.2f} | {r['x_floor']:.2f} | {t.get('reconstruct', 0):.2f} | {ours:.2f} |")
    md_path.write_text("\n".join(lines) + "\n")
    return md_path, json_path


def main(scenes: Path, modes: Sequence[str] = MODES, out: Optional[Path] = None) -> int:
    """CLI entry: print the table row by row; exit code 1 if any run failed."""
    print(HEADER)
    print("-" * len(HEADER))
    rows = run_bench(Path(scenes), modes=[m.strip() for m in modes if m.strip()], out=out, echo=True)
    if out is not None:
        print(f"results written to {Path(out) / 'results.md'} and results.json")
    report_warnings("bench", [f"{r['scene']}/{r['mode']}: {w}" for r in rows for w in r.get("warnings", [])])
    return 1 if any("error" in r for r in rows) else 0
