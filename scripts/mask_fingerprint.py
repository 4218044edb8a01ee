"""Fingerprint the mask pipeline's output: a sha256 per (scene, mode) of the visible and amodal masks.

Used to show that a refactor changed no behaviour: run it before and after and compare.

    python scripts/mask_fingerprint.py --out before.json [--scenes ../shared/bench/scenes]
    python scripts/mask_fingerprint.py --out after.json --compare before.json [--scenes ...]

Scenes: every bench bundle under --scenes (if given) and the sample scenes the generator makes
(the three sample kinds and every held-out suite kind at seed 0, at the suite's default size),
each in the modes oracle, mono and none.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from insertanywhere.bench import MODES, read_meta, scene_dirs
from insertanywhere.bench import _mode_inputs as mode_inputs
from insertanywhere.bench_suite import FRAMES, HEIGHT, WIDTH
from insertanywhere.errors import InsertAnywhereError
from insertanywhere.masks.pipeline import run_masks
from insertanywhere.sample_scene import SUITE_KINDS, make_scene

SAMPLE_KINDS = ("static", "moving_support", "occluder")


def fingerprint(folder: Path, mode: str) -> str:
    """sha256 of the masks, or of the error message when the run refuses the scene."""
    meta = read_meta(folder)
    digest = hashlib.sha256()
    try:
        result = run_masks(folder / "scene.mp4", meta["placement"], object_mesh=folder / "object.ply",
                           **mode_inputs(folder, meta, mode))
    except InsertAnywhereError as exc:
        digest.update(f"error: {exc}".encode())
        return digest.hexdigest()
    for masks in (result.visible, result.amodal):
        digest.update(np.asarray(masks.shape, np.int64).tobytes())
        digest.update(np.packbits(np.asarray(masks, bool)).tobytes())
    return digest.hexdigest()


def sample_bundles(root: Path) -> list[Path]:
    folders = []
    for kind in SAMPLE_KINDS:
        folders.append(make_scene(kind, seed=0).write_bundle(root / kind))
    for kind in SUITE_KINDS:
        scene = make_scene(kind, num_frames=FRAMES, width=WIDTH, height=HEIGHT, seed=0)
        folders.append(scene.write_bundle(root / f"suite_{kind}"))
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenes", type=Path, help="folder of bench bundles (e.g. ../shared/bench/scenes)")
    parser.add_argument("--compare", type=Path, help="an earlier fingerprint JSON to compare with")
    args = parser.parse_args()
    prints = {}
    with tempfile.TemporaryDirectory(prefix="ia_fingerprint_") as tmp:
        folders = (scene_dirs(args.scenes) if args.scenes else []) + sample_bundles(Path(tmp))
        for folder in folders:
            for mode in MODES:
                key = f"{folder.name}/{mode}"
                prints[key] = fingerprint(folder, mode)
                print(key, prints[key][:16], flush=True)
    args.out.write_text(json.dumps(prints, indent=1, sort_keys=True))
    if not args.compare:
        return 0
    before = json.loads(args.compare.read_text())
    changed = sorted(k for k in before.keys() | prints.keys() if before.get(k) != prints.get(k))
    print(f"{len(prints)} runs, {len(changed)} differ from {args.compare}: {changed}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
