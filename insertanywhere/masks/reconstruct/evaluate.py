"""Measure 4D Reconstruct against ground-truth scene bundles (docs/FORMATS.md, Scene bundle).

For each scene folder and mode (oracle: true depth + K; mono: depth_mono.npz disparity, no K;
none: frames only) it prints the rotation error, camera-direction error, trajectory error after
one scale, depth abs-rel after one scale, moving-mask IoU, focal error and seconds.
Usage: python -m insertanywhere.masks.reconstruct.evaluate SCENES_DIR [--modes oracle,mono,none]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from ...errors import InsertAnywhereError
from ..geometry import invert_rigid, project, rotation_angle_deg, transform, unproject
from . import reconstruct

MODES = ("oracle", "mono", "none")


BACKGROUND_DEPTH = 99.0  # m; bundles put the empty background at 100 m (docs/FORMATS.md), in float16: nearer is scene


def load_bundle(folder: Path) -> dict:
    """frames uint8 [F, H, W, 3], K [3, 3], camera_from_world [F, 4, 4], depth, disparity, dynamic."""
    meta = json.loads((folder / "scene.json").read_text())
    capture = cv2.VideoCapture(str(folder / "scene.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise InsertAnywhereError(f"Could not decode {folder / 'scene.mp4'}.")
    num = len(frames)
    dynamic = [cv2.imread(str(folder / "gt" / "dynamic" / f"{t:05d}.png"), cv2.IMREAD_GRAYSCALE)
               for t in range(num)]
    return {
        "name": folder.name,
        "meta": meta,
        "frames": np.stack(frames),
        "K": np.array(meta["intrinsics"], np.float64),
        "camera_from_world": np.array(meta["world_to_camera"], np.float64)[:num],
        "depth": np.load(folder / "depth.npz")["depth"][:num].astype(np.float32),
        "disparity": np.load(folder / "depth_mono.npz")["disparity"][:num].astype(np.float32),
        "dynamic": np.stack([d >= 128 if d is not None else np.zeros(frames[0].shape[:2], bool)
                             for d in dynamic]),
    }


def pose_errors(est: np.ndarray, gt: np.ndarray) -> dict:
    """Errors of camera_from_world est [F, 4, 4] (frame 0 = identity) against gt [F, 4, 4] (any world)."""
    rel = gt @ invert_rigid(gt[0])[None]  # ground truth with frame 0's camera as world
    rot = [rotation_angle_deg(est[t, :3, :3] @ rel[t, :3, :3].T) for t in range(len(est))]
    c_est = -np.einsum("fba,fb->fa", est[:, :3, :3], est[:, :3, 3])
    c_gt = -np.einsum("fba,fb->fa", rel[:, :3, :3], rel[:, :3, 3])
    path = np.linalg.norm(np.diff(c_gt, axis=0), axis=1).sum()
    scale = float((c_est * c_gt).sum() / max((c_est ** 2).sum(), 1e-12))
    ate = np.linalg.norm(scale * c_est - c_gt, axis=1)
    far = np.linalg.norm(c_gt, axis=1) > 0.05 * max(path, 1e-9)
    cos = (c_est[far] * c_gt[far]).sum(1) / np.maximum(
        np.linalg.norm(c_est[far], axis=1) * np.linalg.norm(c_gt[far], axis=1), 1e-12)
    direction = np.degrees(np.arccos(np.clip(cos, -1, 1))) if far.any() else np.zeros(1)
    return {"rot_mean_deg": float(np.mean(rot)), "rot_max_deg": float(np.max(rot)),
            "dir_mean_deg": float(np.mean(direction)), "ate_rel": float(ate.mean() / max(path, 1e-9))}


def anchor_reprojection(scene, bundle: dict, meta: dict) -> dict:
    """Mean and max over frames of `anchor_errors`; NaN when the anchor is on a moving thing."""
    errors = anchor_errors(scene, bundle, meta)
    if errors is None:
        return {"anchor_px_mean": float("nan"), "anchor_px_max": float("nan")}
    return {"anchor_px_mean": float(np.mean(errors)), "anchor_px_max": float(np.max(errors))}


def anchor_errors(scene, bundle: dict, meta: dict) -> Optional[np.ndarray]:
    """Per-frame pixel error [F] of the support surface at the placement anchor (a 5 x 3 grid, +-1/4
    of the object's frame-0 height across, +-1/10 up and down), lifted with the estimated depth and
    reprojected with the estimated cameras, against the same pixels lifted and reprojected with the
    ground truth. None when the anchor is on a moving thing (then the object moves with it)."""
    placement = meta["placement"]
    (au, av), size = placement["anchor"], placement["height_px"]
    height, width = bundle["depth"].shape[1:]
    u = np.clip(au + np.linspace(-0.25, 0.25, 5)[None, :] * size, 0, width - 1)
    v = np.clip(av + np.linspace(-0.1, 0.1, 3)[:, None] * size, 0, height - 1)
    u, v = np.broadcast_arrays(u, v)
    u, v = u.ravel(), v.ravel()
    iu, iv = np.rint(u).astype(int), np.rint(v).astype(int)
    if bundle["dynamic"][0, int(round(av)), int(round(au))]:
        return None
    gt_pose = bundle["camera_from_world"] @ invert_rigid(bundle["camera_from_world"][0])[None]
    gt_pts = unproject(u, v, bundle["depth"][0, iv, iu].astype(np.float64), bundle["K"])
    est_pts = unproject(u, v, scene.depth[0, iv, iu].astype(np.float64), scene.K.astype(np.float64))
    errors = []
    for t in range(scene.num_frames):
        gt_uv, _ = project(transform(gt_pose[t], gt_pts), bundle["K"])
        est_uv, _ = project(transform(scene.camera_from_world[t].astype(np.float64), est_pts),
                            scene.K.astype(np.float64))
        errors.append(np.nanmean(np.linalg.norm(est_uv - gt_uv, axis=1)))
    return np.array(errors)


def depth_scale_drift(scene, bundle: dict) -> np.ndarray:
    """Per-frame scale [F] of the estimated depth against the truth (median ratio over static,
    finite pixels), relative to frame 0: 1 everywhere when the per-frame alignment keeps one scale."""
    ratios = []
    for t in range(scene.num_frames):
        keep = (bundle["depth"][t] < BACKGROUND_DEPTH) & ~bundle["dynamic"][t] & np.isfinite(scene.depth[t])
        ratios.append(np.median(scene.depth[t][keep] / bundle["depth"][t][keep]))
    return np.array(ratios) / ratios[0]


def depth_abs_rel(est: np.ndarray, gt: np.ndarray) -> float:
    """Mean |s * est - gt| / gt with one global scale s (median ratio), background left out."""
    keep = gt < BACKGROUND_DEPTH
    s = np.median(gt[keep] / np.maximum(est[keep], 1e-9))
    return float(np.mean(np.abs(s * est[keep] - gt[keep]) / gt[keep]))


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> dict:
    """IoU over the whole video, and the fraction of frame area falsely marked moving."""
    union = (pred | gt).sum()
    iou = float((pred & gt).sum() / union) if union else 1.0
    return {"moving_iou": iou if gt.any() else float("nan"), "moving_false": float((pred & ~gt).mean())}


def evaluate_inputs(bundle: dict, mode: str) -> dict:
    """reconstruct()'s keyword inputs for a bundle in a mode (oracle: true depth and K; mono: disparity)."""
    kwargs = {"fps": 16.0}
    if mode == "oracle":
        kwargs.update(depth=bundle["depth"], K=bundle["K"])
    elif mode == "mono":
        kwargs.update(disparity=bundle["disparity"])
    return kwargs


def evaluate_scene(bundle: dict, mode: str) -> dict:
    start = time.perf_counter()
    try:
        scene = reconstruct(bundle["frames"], **evaluate_inputs(bundle, mode))
    except InsertAnywhereError as exc:
        return {"scene": bundle["name"], "mode": mode, "error": str(exc)}
    seconds = time.perf_counter() - start
    row = {"scene": bundle["name"], "mode": mode, "seconds": seconds}
    row.update(pose_errors(scene.camera_from_world.astype(np.float64), bundle["camera_from_world"]))
    row["depth_absrel"] = depth_abs_rel(scene.depth, bundle["depth"])
    row.update(anchor_reprojection(scene, bundle, bundle["meta"]))
    row.update(mask_iou(scene.moving, bundle["dynamic"]))
    row["focal_err"] = float(abs(scene.K[0, 0] - bundle["K"][0, 0]) / bundle["K"][0, 0])
    row["timings"] = scene.timings
    return row


COLUMNS = [("rot_mean_deg", "rot°", "{:.3f}"), ("rot_max_deg", "rotmax°", "{:.3f}"),
           ("dir_mean_deg", "dir°", "{:.2f}"), ("ate_rel", "ATE/path", "{:.3f}"),
           ("depth_absrel", "absrel", "{:.3f}"), ("anchor_px_mean", "anchor px", "{:.2f}"),
           ("anchor_px_max", "anchor max", "{:.2f}"), ("moving_iou", "mov IoU", "{:.3f}"),
           ("moving_false", "mov FP", "{:.4f}"), ("focal_err", "f err", "{:.3f}"), ("seconds", "s", "{:.2f}")]


def format_table(rows: list[dict]) -> str:
    head = "| scene | mode | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['scene']} | {row['mode']} | error: {row['error']} |")
            continue
        cells = [fmt.format(row[key]) for key, _, fmt in COLUMNS]
        lines.append(f"| {row['scene']} | {row['mode']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenes", type=Path, help="folder of scene bundles (or one bundle)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if bad := [m for m in modes if m not in MODES]:
        raise InsertAnywhereError(f"Unknown mode(s) {bad}; use some of {list(MODES)}.")
    folders = [args.scenes] if (args.scenes / "scene.json").is_file() else sorted(
        p for p in args.scenes.iterdir() if (p / "scene.json").is_file())
    if not folders:
        raise InsertAnywhereError(f"No scene bundles (folders with scene.json) in '{args.scenes}'.")
    rows = []
    for folder in folders:
        bundle = load_bundle(folder)
        for mode in modes:
            rows.append(evaluate_scene(bundle, mode))
            print(json.dumps({k: v for k, v in rows[-1].items()}), flush=True)
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
