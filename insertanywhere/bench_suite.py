"""The procedural held-out suite: `insertanywhere bench --suite procedural`.

Every (kind, seed) of the sample-scene generator's suite kinds (`sample_scene.SUITE_KINDS`) is
rendered into a temporary bench bundle, run through the same `bench.run_scene` as the shared
scenes in each mode, scored per frame and deleted; nothing generated is kept or committed.

Two fixed, disjoint seed sets: `dev` seeds 0..N-1 may be looked at while changing the method,
`check` seeds 1000..1000+N-1 are only scored (N = --seeds, at most SEED_SET_SIZE so they never meet).
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .bench import MODES, run_scene
from .errors import InsertAnywhereError
from .sample_scene import SUITE_KINDS, make_scene

SEED_SETS = {"dev": 0, "check": 1000}  # first seed of each set
SEED_SET_SIZE = 1000  # seeds per set: dev is 0..999, check 1000..1999
FRAMES, WIDTH, HEIGHT = 21, 200, 120  # default scene size: affordable on 2 cores (a few seconds per scene and mode)
SCALING_FRAMES = (11, 21, 41)
SCALING_SIZES = ((160, 96), (200, 120), (400, 240))


def seeds_of(seed_set: str, count: int) -> list[int]:
    """The first `count` seeds of a set ('dev' or 'check')."""
    if seed_set not in SEED_SETS:
        raise InsertAnywhereError(f"Unknown seed set '{seed_set}'; use dev, check or both.")
    if not 1 <= count <= SEED_SET_SIZE:
        raise InsertAnywhereError(f"--seeds {count} is out of range; use 1 to {SEED_SET_SIZE}.")
    return list(range(SEED_SETS[seed_set], SEED_SETS[seed_set] + count))


def check_kinds(kinds: Sequence[str]) -> list[str]:
    kinds = [k.strip() for k in kinds if k.strip()]
    unknown = [k for k in kinds if k not in SUITE_KINDS]
    if unknown or not kinds:
        raise InsertAnywhereError(f"Unknown suite kinds {unknown}; use some of {', '.join(SUITE_KINDS)}.")
    return kinds


def run_case(kind: str, seed: int, modes: Sequence[str], frames: int = FRAMES, width: int = WIDTH,
             height: int = HEIGHT) -> list[dict]:
    """Render one (kind, seed) into a temporary bundle and run it in every mode; rows of `run_scene`
    with kind, seed, frames, size and the seconds it took to render the scene."""
    started = time.perf_counter()
    scene = make_scene(kind, num_frames=frames, width=width, height=height, seed=seed)
    with tempfile.TemporaryDirectory(prefix="ia_suite_") as tmp:
        folder = scene.write_bundle(Path(tmp) / f"{kind}_{seed}")
        render = round(time.perf_counter() - started, 2)
        rows = [_run_or_crash(folder, mode) for mode in modes]
    for row in rows:
        row.update(kind=kind, seed=seed, frames=frames, size=f"{width}x{height}", render_seconds=render)
    return rows


def _run_or_crash(folder: Path, mode: str) -> dict:
    """run_scene, with a crash of the pipeline (an exception other than a user error) recorded as a
    failed row naming the exception and where it was raised, so one crash does not end the suite."""
    try:
        return run_scene(folder, mode, ablation=False)
    except Exception as exc:  # noqa: BLE001 - a crash is a result here, reported in the table
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "insertanywhere" in Path(f.filename).parts] or frames
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in ours[::-1][:3])
        return {"scene": folder.name, "mode": mode, "error": f"crashed: {type(exc).__name__}: {exc} (at {where})"}


def run_cases(cases: list[tuple[str, int]], modes: Sequence[str], jobs: int = 1, echo: bool = False,
              log: Optional[Path] = None, **size) -> list[dict]:
    """run_case over (kind, seed) cases, `jobs` at a time (separate processes); with `log`, each row
    is also appended to that JSON-lines file as it comes."""
    rows: list[dict] = []

    def take(new: list[dict]) -> None:
        rows.extend(new)
        if log is not None:
            with open(log, "a", encoding="utf-8") as f:
                f.writelines(json.dumps(r) + "\n" for r in new)
        if echo:
            for row in new:
                print(format_case(row), flush=True)

    if jobs <= 1:
        for kind, seed in cases:
            take(run_case(kind, seed, modes, **size))
        return rows
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(run_case, kind, seed, modes, **size) for kind, seed in cases]:
            take(future.result())
    return rows


def _p10(values) -> Optional[float]:
    return float(np.percentile(values, 10)) if len(values) else None


def summarize(rows: list[dict], modes: Sequence[str], kinds: Sequence[str]) -> list[dict]:
    """Per kind and mode: scenes, mean IoU (mean of scene means), p10 and min of the pooled per-frame
    IoUs, the worst scene's mean, the mean over occluded frames, mean seconds, mean floor seconds and
    seconds / floor. Then per mode over all kinds ('all'), whose p10 is over the scenes' means."""
    out = []
    for mode in modes:
        for kind in list(kinds) + ["all"]:
            sel = [r for r in rows if r["mode"] == mode and (kind == "all" or r["kind"] == kind)]
            ok = [r for r in sel if "error" not in r]
            ious = [x for r in ok for x in r["frame_iou"]]
            occ = [x for r in ok for x, o in zip(r["frame_iou"], r["frame_occluded"]) if o]
            means = [r["mean"] for r in ok]
            seconds = sum(r["seconds"] for r in ok)
            floor = sum(r["floor_seconds"] for r in ok)
            out.append({
                "kind": kind, "mode": mode, "scenes": len(sel), "failed": len(sel) - len(ok),
                "mean": float(np.mean(means)) if means else None,
                "p10": _p10(means) if kind == "all" else _p10(ious),
                "min": float(min(ious)) if ious else None,
                "worst_scene": float(min(means)) if means else None,
                "occluded": float(np.mean(occ)) if occ else None, "n_occluded": len(occ),
                "seconds": seconds / len(ok) if ok else None, "floor_seconds": floor / len(ok) if ok else None,
                "x_floor": seconds / floor if ok and floor > 0 else None,
            })
    return out


def _f(value, spec: str = ".3f", width: int = 6) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}{spec}}"


SUMMARY_HEADER = (f"{'kind':<19} {'mode':<7} {'scenes':>6} {'mean':>6} {'p10':>6} {'min':>6} {'worst':>6} "
                  f"{'occ':>6} {'n_occ':>5} | {'s':>6} {'floor s':>7} {'x floor':>7}")


def format_summary(summary: list[dict]) -> str:
    lines = [SUMMARY_HEADER, "-" * len(SUMMARY_HEADER)]
    for s in summary:
        failed = f"  ({s['failed']} failed)" if s["failed"] else ""
        lines.append(f"{s['kind']:<19} {s['mode']:<7} {s['scenes']:>6} {_f(s['mean'])} {_f(s['p10'])} {_f(s['min'])} "
                     f"{_f(s['worst_scene'])} {_f(s['occluded'])} {s['n_occluded']:>5} | {_f(s['seconds'], '.2f')} "
                     f"{_f(s['floor_seconds'], '.2f', 7)} {_f(s['x_floor'], '.2f', 7)}{failed}")
    return "\n".join(lines)


def format_markdown(summary: list[dict]) -> str:
    lines = ["| kind | mode | scenes | mean IoU | p10 | min | worst scene | occluded IoU | occluded frames | "
             "seconds | floor s | x floor |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        cells = [s["kind"], s["mode"], str(s["scenes"] - s["failed"]) + (f" ({s['failed']} failed)" if s["failed"]
                                                                         else "")]
        cells += [_f(s[k]).strip() for k in ("mean", "p10", "min", "worst_scene", "occluded")]
        cells += [str(s["n_occluded"])] + [_f(s[k], ".2f").strip() for k in ("seconds", "floor_seconds", "x_floor")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_case(row: dict) -> str:
    head = f"{row['kind'] + '/' + str(row['seed']):<24} {row['mode']:<7}"
    if "error" in row:
        return f"{head} failed: {row['error']}"
    occ = _f(row["occluded"])
    return (f"{head} mean {row['mean']:.3f} min {row['min']:.3f} occ {occ} ({row['n_occluded']}) | "
            f"{row['seconds']:6.2f} s, floor {row['floor_seconds']:.2f} s, x{row['x_floor']:.2f} "
            f"(render {row['render_seconds']:.1f} s)")


def scaling(kind: str, mode: str = "mono", frames: int = FRAMES, size: tuple = (WIDTH, HEIGHT),
            echo: bool = True) -> list[dict]:
    """How time grows: one `kind` scene (dev seed 0) at SCALING_FRAMES frames (size fixed) and at
    SCALING_SIZES (frames fixed); a row per run with seconds, floor and per-frame / per-pixel costs."""
    settings = [(n, size) for n in SCALING_FRAMES] + [(frames, wh) for wh in SCALING_SIZES if wh != tuple(size)]
    rows = []
    if echo:
        print(f"{'frames':>6} {'size':>9} | {'s':>6} {'floor s':>7} {'x floor':>7} | {'ms/frame':>8} "
              f"{'ns/frame-px':>11}  mean IoU")
    for n, (w, h) in settings:
        row = run_case(kind, 0, [mode], frames=n, width=w, height=h)[0]
        rows.append(row)
        if echo:
            if "error" in row:
                print(f"{n:>6} {w}x{h:<5} failed: {row['error']}")
                continue
            print(f"{n:>6} {f'{w}x{h}':>9} | {row['seconds']:6.2f} {row['floor_seconds']:7.2f} {row['x_floor']:7.2f} | "
                  f"{1e3 * row['seconds'] / n:8.1f} {1e9 * row['seconds'] / (n * w * h):11.1f}  {row['mean']:.3f}",
                  flush=True)
    return rows


def main(seeds: int = 3, seed_set: str = "both", kinds: Optional[Sequence[str]] = None,
         modes: Sequence[str] = MODES, jobs: int = 1, frames: int = FRAMES, size: tuple = (WIDTH, HEIGHT),
         out: Optional[Path] = None, scaling_kind: Optional[str] = None) -> int:
    """CLI entry: per-scene rows as they finish, then the summary table per seed set."""
    kinds = check_kinds(kinds or SUITE_KINDS)
    modes = [m.strip() for m in modes if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise InsertAnywhereError(f"Unknown bench modes {unknown}; use some of {', '.join(MODES)}.")
    if scaling_kind is not None:
        rows = scaling(check_kinds([scaling_kind])[0], modes[0], frames, size)
        return 1 if any("error" in r for r in rows) else 0
    sets = ["dev", "check"] if seed_set == "both" else [seed_set]
    started = time.perf_counter()
    report, failed = {}, False
    for name in sets:
        cases = [(kind, seed) for kind in kinds for seed in seeds_of(name, seeds)]
        print(f"seed set {name}: seeds {cases[0][1]}..{cases[-1][1]}, {len(kinds)} kinds, modes {','.join(modes)}, "
              f"{frames} frames at {size[0]}x{size[1]}, {jobs} job(s)", flush=True)
        if out is not None:
            Path(out).mkdir(parents=True, exist_ok=True)
        rows = run_cases(cases, modes, jobs, echo=True, log=Path(out) / f"{name}_rows.jsonl" if out else None,
                         frames=frames, width=size[0], height=size[1])
        summary = summarize(rows, modes, kinds)
        print(f"\nsummary, seed set {name}:\n{format_summary(summary)}\n", flush=True)
        report[name] = {"rows": rows, "summary": summary}
        failed = failed or any("error" in r for r in rows)
    print(f"suite wall time {time.perf_counter() - started:.0f} s")
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "suite.json").write_text(json.dumps(report, indent=1))
        (out / "suite.md").write_text("\n\n".join(f"seed set {name}\n\n{format_markdown(r['summary'])}"
                                                 for name, r in report.items()) + "\n")
        print(f"results written to {out / 'suite.md'} and suite.json")
    return 1 if failed else 0
