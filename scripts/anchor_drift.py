"""Per-frame anchor reprojection error and depth-scale drift of 4D Reconstruct on suite scenes.

    PYTHONPATH=. python scripts/anchor_drift.py --kind walk_forward --seeds 0,1 --mode mono

For each scene: the anchor's pixel error per frame (estimated depth and cameras against the
truth, reconstruct/evaluate.anchor_errors) and the estimated depth's scale per frame relative to
frame 0 (evaluate.depth_scale_drift; 1.00 everywhere when the per-frame alignment keeps one scale).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from insertanywhere.masks.reconstruct.evaluate import anchor_errors, depth_scale_drift, evaluate_inputs, load_bundle
from insertanywhere.masks.reconstruct import reconstruct
from insertanywhere.sample_scene import make_scene


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="walk_forward")
    parser.add_argument("--seeds", default="0,1", help="comma list (dev seeds: 0..999)")
    parser.add_argument("--mode", default="mono", choices=("mono", "oracle"))
    parser.add_argument("--frames", type=int, default=21)
    args = parser.parse_args()
    for seed in [int(s) for s in args.seeds.split(",")]:
        scene = make_scene(args.kind, num_frames=args.frames, width=200, height=120, seed=seed)
        with tempfile.TemporaryDirectory(prefix="ia_drift_") as tmp:
            bundle = load_bundle(scene.write_bundle(Path(tmp) / f"{args.kind}_{seed}"))
        estimate = reconstruct(bundle["frames"], **evaluate_inputs(bundle, args.mode))
        errors = anchor_errors(estimate, bundle, bundle["meta"])
        scales = depth_scale_drift(estimate, bundle)
        print(f"{args.kind}/{seed} {args.mode}")
        if errors is None:
            print("  anchor px   - (the anchor is on a moving thing)")
        else:
            print("  anchor px  " + " ".join(f"{e:5.2f}" for e in errors))
        print("  depth scale" + " ".join(f"{s:6.3f}" for s in scales))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
