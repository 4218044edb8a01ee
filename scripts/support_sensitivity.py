"""Sensitivity of the procedural suite to the support-motion constants (issue #10, point 3).

    PYTHONPATH=. python scripts/support_sensitivity.py --seeds 2 --jobs 2 \
        --kinds sliding_support,turntable,walk_forward,handheld,one_occluder --modes mono,oracle

Each dev scene is rendered and reconstructed once per mode (the constants do not enter there); then
place, propagate and reproject run once with today's constants and once per constant scaled by 0.5
and by 2 (the others as they are), each scored against the ground truth. Prints a markdown table: the
mean visible IoU over all scenes and modes, and per kind, for each setting. Only dev seeds: the check
seeds are never looked at here.
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from insertanywhere import bench_suite
from insertanywhere.bench import _mode_inputs, frame_ious, read_meta
from insertanywhere.masks import propagate, support_motion
from insertanywhere.masks.pipeline import masks_from_scene, run_masks
from insertanywhere.sample_scene import make_scene

# (module, name): the five constants that move the decision most
CONSTANTS = [(support_motion, "BIC_WEIGHT"), (support_motion, "WINDOW_STEPS"),
             (support_motion, "FLOW_NOISE_FLOOR_PX"), (propagate, "HIDDEN_TOLERANCE"),
             (propagate, "ALIGN_SLACK_PX")]
FACTORS = (0.5, 2.0)


def _set(setting) -> None:
    """Today's constants, with the one named in setting = (name, factor) scaled (None: none)."""
    for module, name in CONSTANTS:
        default = getattr(module, f"_default_{name}", getattr(module, name))
        setattr(module, f"_default_{name}", default)
        value = default * (setting[1] if setting and setting[0] == name else 1.0)
        setattr(module, name, type(default)(round(value)) if isinstance(default, int) else value)


def _case(settings, kind, seed, modes):
    """One dev scene: {(setting, mode): mean visible IoU}, reconstructed once per mode."""
    scene = make_scene(kind, num_frames=bench_suite.FRAMES, width=bench_suite.WIDTH, height=bench_suite.HEIGHT,
                       seed=seed)
    scores = {}
    with tempfile.TemporaryDirectory(prefix="ia_sensitivity_") as tmp:
        folder = scene.write_bundle(Path(tmp) / f"{kind}_{seed}")
        meta = read_meta(folder)
        for mode in modes:
            _set(None)
            result = run_masks(folder / "scene.mp4", meta["placement"], None, object_mesh=folder / "object.ply",
                               **_mode_inputs(folder, meta, mode))
            for setting in settings:
                _set(setting)
                masks = masks_from_scene(result.scene, result.obj, result.placement)
                scores[setting, mode] = float(frame_ious(masks.visible, scene.gt_visible).mean())
    return kind, scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--kinds", default="sliding_support,turntable,walk_forward,handheld,one_occluder")
    parser.add_argument("--modes", default="mono,oracle")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    kinds = bench_suite.check_kinds(args.kinds.split(","))
    modes = args.modes.split(",")
    settings = [None] + [(name, f) for _, name in CONSTANTS for f in FACTORS]
    cases = [(k, seed) for k in kinds for seed in bench_suite.seeds_of("dev", args.seeds)]
    scores: dict = {}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for future in [pool.submit(_case, settings, k, seed, modes) for k, seed in cases]:
            kind, case = future.result()
            for (setting, _), value in case.items():
                scores.setdefault(setting, {}).setdefault(kind, []).append(value)
    print("| setting | all | " + " | ".join(kinds) + " |")
    print("|---|---|" + "---|" * len(kinds))
    for setting in settings:
        per_kind = scores[setting]
        label = "today's constants" if setting is None else f"{setting[0]} x{setting[1]:g}"
        every = [v for k in kinds for v in per_kind[k]]
        print(f"| {label} | {np.mean(every):.3f} | " + " | ".join(f"{np.mean(per_kind[k]):.3f}" for k in kinds) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
