"""`insertanywhere demo`: the main job on the bundled sample scene, scored against its ground truth.

Nothing is downloaded: the sample scene (video, depth, object mesh, placement, ground-truth masks) is
rendered by `sample_scene`, then the mask pipeline runs on the files exactly as `insertanywhere masks`
would, and the result is scored and drawn into OUT/result.png.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .bench import score
from .console import report_warnings
from .progress import Progress

DEMO_FRAMES, DEMO_WIDTH, DEMO_HEIGHT = 33, 320, 192


def bundled_sample(kind: str = "occluder"):
    """The pack's sample scene: the demo's input and the shipped workflows' sample inputs."""
    from .sample_scene import make_scene

    return make_scene(kind=kind, num_frames=DEMO_FRAMES, width=DEMO_WIDTH, height=DEMO_HEIGHT, seed=0)


def result_figure(frames: np.ndarray, anchor: np.ndarray, visible: np.ndarray, gt: np.ndarray,
                  columns: int = 4) -> np.ndarray:
    """uint8 figure: row 1 input frames, row 2 anchor video, row 3 masks (green = predicted,
    magenta outline = ground truth), for `columns` evenly spaced frames."""
    import cv2

    picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
    rows = [[], [], []]
    for t in picks:
        rows[0].append(frames[t])
        rows[1].append(anchor[t])
        overlay = (frames[t] * 0.45).astype(np.uint8)
        overlay[visible[t]] = (overlay[visible[t]] * 0.4 + np.array([0, 255, 0]) * 0.6).astype(np.uint8)
        contours, _ = cv2.findContours(gt[t].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(overlay, contours, -1, (255, 0, 255), 1)
        cv2.putText(overlay, f"t={t}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        rows[2].append(overlay)
    gap = 4
    return np.concatenate([np.concatenate([np.pad(im, ((gap // 2,) * 2, (gap // 2,) * 2, (0, 0)),
                                                  constant_values=255) for im in row], axis=1)
                           for row in rows], axis=0)


def run_demo(out: Path, kind: str = "occluder", depth: str = "mono",
             progress: Optional[Callable[[str], Progress]] = None) -> int:
    from PIL import Image

    from .masks.pipeline import run_masks

    out = Path(out)
    scene = bundled_sample(kind)
    bundle = scene.write_bundle(out / "scene")
    placement = out / "scene" / "placement.json"
    placement.write_text(json.dumps(scene.placement, indent=1))
    inputs = {"mono": {"depth": bundle / "depth_mono.npz"},
              "oracle": {"depth": bundle / "depth.npz", "intrinsics": np.asarray(scene.K)},
              "none": {}}[depth]
    result = run_masks(video=bundle / "scene.mp4", placement=placement, out=out / "masks",
                       object_mesh=bundle / "object.ply", progress=progress, **inputs)
    scores = score(result.visible, scene.gt_visible, scene.gt_amodal)
    figure = result_figure(scene.frames, result.anchor, result.visible, scene.gt_visible)
    Image.fromarray(figure).save(out / "result.png")
    (out / "scores.json").write_text(json.dumps(scores, indent=1))
    occluded = "n/a" if scores["occluded"] is None else f"{scores['occluded']:.3f}"
    print(f"sample scene '{kind}' ({DEMO_FRAMES} frames, {DEMO_WIDTH}x{DEMO_HEIGHT}), depth: {depth}")
    print(f"visible-mask IoU vs ground truth: mean {scores['mean']:.3f}, min {scores['min']:.3f}, "
          f"occluded frames {occluded}")
    print(f"time: {result.timings['total']:.1f} s  ->  {out}/result.png, {out}/masks/")
    report_warnings("demo", result.warnings)
    return 0
