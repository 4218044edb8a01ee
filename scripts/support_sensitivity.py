"""Sensitivity of the procedural suite to the support-motion constants (issue #10, point 3).

    PYTHONPATH=. python scripts/support_sensitivity.py --seeds 2 --jobs 2 \
        --kinds sliding_support,turntable,walk_forward,handheld,one_occluder --modes mono,oracle

Runs the dev seeds once with today's constants, then once per constant scaled by 0.5 and by 2
(the others as they are), and prints a markdown table: the mean visible IoU over all scenes and
modes, and per kind, for each setting. Only dev seeds: the check seeds are never looked at here.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from insertanywhere import bench_suite
from insertanywhere.masks import propagate, support_motion

# (module, name): the five constants that move the decision most
CONSTANTS = [(support_motion, "BIC_WEIGHT"), (support_motion, "WINDOW_STEPS"),
             (support_motion, "FLOW_NOISE_FLOOR_PX"), (propagate, "HIDDEN_TOLERANCE"),
             (propagate, "ALIGN_SLACK_PX")]
FACTORS = (0.5, 2.0)


def _case(setting, kind, seed, modes):
    """One scene with one constant scaled (setting = (name, factor) or None), in a worker process."""
    for module, name in CONSTANTS:
        default = getattr(module, f"_default_{name}", getattr(module, name))
        setattr(module, f"_default_{name}", default)
        factor = setting[1] if setting and setting[0] == name else 1.0
        value = default * factor
        setattr(module, name, type(default)(round(value)) if isinstance(default, int) else value)
    return setting, bench_suite.run_case(kind, seed, modes)


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
    cases = [(s, k, seed) for s in settings for k in kinds for seed in bench_suite.seeds_of("dev", args.seeds)]
    scores: dict = {}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for future in [pool.submit(_case, s, k, seed, modes) for s, k, seed in cases]:
            setting, rows = future.result()
            for row in rows:
                scores.setdefault(setting, {}).setdefault(row["kind"], []).append(row.get("mean", 0.0))
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
