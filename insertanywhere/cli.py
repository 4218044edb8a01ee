"""`insertanywhere`: the pipeline without ComfyUI, for batch work and benchmarks.

Every subcommand calls the same core functions as the nodes. Subcommands import
their stage lazily so `insertanywhere --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional

from .errors import InsertAnywhereError
from .progress import text_progress


# --- masks -----------------------------------------------------------------------------------------

def _add_masks(p: argparse.ArgumentParser) -> None:
    from .masks.object3d import MAX_FACES

    p.add_argument("--video", required=True, type=Path, help="scene video (mp4/webm/mov)")
    obj = p.add_mutually_exclusive_group(required=True)
    obj.add_argument("--object-mesh", type=Path, help="object mesh (.glb/.gltf/.obj/.ply/.stl)")
    obj.add_argument("--object-image", type=Path, help="reference image of the object (with --object-mask)")
    p.add_argument("--object-mask", type=Path, help="mask of the object in --object-image (white = object)")
    p.add_argument("--placement", required=True, type=Path, help="placement JSON (see docs/FORMATS.md)")
    p.add_argument("--depth", type=Path, help="npz with key 'depth' (metric) or 'disparity' (relative inverse)")
    p.add_argument("--intrinsics", type=Path, help="JSON with a 3x3 matrix under key 'K'")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--no-occlusion", action="store_true", help="ablation: ignore scene depth in the z-test")
    p.add_argument("--no-propagation", action="store_true", help="ablation: keep the frame-0 world pose")
    sel = p.add_argument_group("frame selection (the Load Video node's knobs, same defaults except max side 0)")
    sel.add_argument("--start", type=int, default=0, help="first frame to keep (default 0)")
    sel.add_argument("--stride", type=int, default=1, help="keep every n-th frame; fps is divided by it (default 1)")
    sel.add_argument("--frame-cap", "--max-frames", dest="frame_cap", type=int, default=81,
                     help="decode at most this many frames (default 81, as the node)")
    sel.add_argument("--max-side", type=int, default=0,
                     help="longer side after resizing, 0 keeps the source size (default 0; the node's is 832)")
    sel.add_argument("--fit", default="crop", choices=("crop", "resize", "none"),
                     help="crop (default) or resize to multiples of 16 as the node does, or none; the placement, "
                          "--depth and --intrinsics are in the source video's pixels and fitted with the frames")
    sel.add_argument("--frame-count", default="any", choices=("any", "4k+1"),
                     help="4k+1 trims to 1, 5, 9, ... frames as Wan needs (default any)")
    sel.add_argument("--memory-budget", type=float, default=0.0, metavar="GIB",
                     help="memory the run may use in GiB; 0 (default) = 80%% of the available memory. A selection "
                          "that would not fit is refused before decoding, naming the knob values that would")
    p.add_argument("--upright", default="auto", choices=("auto", "on", "off"),
                   help="object's up on level surfaces from the scene's vertical lines (on), the depth normal (off, "
                        "objects on slopes), or auto: lines unless --depth is metric and --intrinsics given")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="reuse the 4D reconstruction of the same frames and inputs from this folder (off by default)")
    p.add_argument("--cache-max-gb", type=float, default=None, metavar="N",
                   help="size cap of the --cache folder in GB, least recently used scenes removed first (default 10)")
    p.add_argument("--max-faces", type=int, default=MAX_FACES,
                   help=f"face budget: a mesh with more triangles is simplified on load (default {MAX_FACES})")


def _run_masks(args: argparse.Namespace) -> int:
    from .console import report_warnings
    from .masks.options import MaskOptions
    from .masks.pipeline import run_masks
    from .memory import Selection

    if args.object_image and not args.object_mask:
        raise InsertAnywhereError("--object-image needs --object-mask (white where the object is).")
    selection = Selection(start=args.start, stride=args.stride, frame_cap=args.frame_cap, max_side=args.max_side,
                          fit=args.fit, frame_count=args.frame_count)
    options = MaskOptions(occlusion=not args.no_occlusion, propagation=not args.no_propagation,
                          upright=args.upright, max_faces=args.max_faces)
    cache = _scene_cache(args)
    result = run_masks(
        video=args.video, placement=args.placement, out=args.out,
        object_mesh=args.object_mesh, object_image=args.object_image, object_mask=args.object_mask,
        depth=args.depth, intrinsics=args.intrinsics, selection=selection, options=options,
        memory_budget=args.memory_budget, progress=text_progress, cache=cache,
        log=lambda message: print(f"note: {message}", file=sys.stderr),
    )
    print(f"wrote {args.out}  ({result.summary()})")
    report_warnings("masks", result.warnings)
    return 0


def _scene_cache(args: argparse.Namespace):
    """--cache DIR --cache-max-gb N as a SceneCache (None without --cache)."""
    from .masks.scene_cache import DEFAULT_MAX_GB, SceneCache

    if args.cache is None:
        if args.cache_max_gb is not None:
            raise InsertAnywhereError("--cache-max-gb needs --cache DIR (the folder to keep reconstructions in).")
        return None
    if args.cache.exists() and not args.cache.is_dir():
        raise InsertAnywhereError(f"--cache '{args.cache}' is a file; give a folder.")
    # its warnings join the run's (scene.warnings), printed with the others at the end
    return SceneCache.from_gb(args.cache, DEFAULT_MAX_GB if args.cache_max_gb is None else args.cache_max_gb,
                              "--cache-max-gb")


# --- bench -----------------------------------------------------------------------------------------

def _add_bench(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenes", type=Path, help="folder of scene bundles (docs/FORMATS.md)")
    source.add_argument("--suite", choices=("procedural",),
                        help="the procedural held-out suite: sample scenes of every suite kind, rendered on the fly")
    p.add_argument("--modes", default="oracle,mono,none", help="comma list of oracle, mono, none")
    p.add_argument("--out", type=Path, default=None, help="also write results.json / results.md (suite.*) here")
    suite = p.add_argument_group("suite options (with --suite)")
    suite.add_argument("--seeds", type=int, default=3, help="scenes per kind and seed set (default 3)")
    suite.add_argument("--seed-set", default="both", choices=("dev", "check", "both"),
                       help="dev: seeds 0..N-1 (look at these while changing the method); check: seeds "
                            "1000..1000+N-1 (only score them); both (default)")
    suite.add_argument("--kinds", default="", help="comma list of suite kinds (default: all)")
    suite.add_argument("--jobs", type=int, default=1, help="scenes run at once, in separate processes")
    suite.add_argument("--frames", type=int, default=None, help="frames per scene (default 21)")
    suite.add_argument("--size", default=None, help="WxH of the scenes (default 200x120)")
    suite.add_argument("--scaling", default=None, metavar="KIND",
                       help="instead: time one KIND scene at several frame counts and sizes (first mode)")


def _run_bench(args: argparse.Namespace) -> int:
    if args.scenes is not None:
        suite_only = [f"--{k.replace('_', '-')}" for k in ("kinds", "frames", "size", "scaling")
                      if getattr(args, k) not in (None, "")]
        if suite_only:
            raise InsertAnywhereError(f"{', '.join(suite_only)} only apply with --suite procedural, not --scenes.")
        from .bench import main as bench_main

        return bench_main(args.scenes, modes=args.modes.split(","), out=args.out)
    from . import bench_suite

    if args.jobs < 1:
        raise InsertAnywhereError(f"--jobs {args.jobs} must be at least 1.")
    frames = bench_suite.FRAMES if args.frames is None else args.frames
    size = (bench_suite.WIDTH, bench_suite.HEIGHT) if args.size is None else _parse_size(args.size)
    return bench_suite.main(args.seeds, args.seed_set, args.kinds.split(",") if args.kinds else None,
                            args.modes.split(","), args.jobs, frames, size, args.out, args.scaling)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise InsertAnywhereError(f"--size '{text}' is not WxH (for example 240x144).") from None
    return w, h


# --- eval-reconstruction ---------------------------------------------------------------------------

def _add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenes", type=Path, help="folder of scene bundles (or one bundle)")
    p.add_argument("--modes", default="oracle,mono,none", help="comma list of oracle, mono, none")
    p.add_argument("--json", type=Path, help="also write the rows here")


def _run_eval(args: argparse.Namespace) -> int:
    from .masks.reconstruct.evaluate import main as evaluate_main

    return evaluate_main([str(args.scenes), "--modes", args.modes] + (["--json", str(args.json)] if args.json else []))


# --- demo ------------------------------------------------------------------------------------------

def _add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    p.add_argument("--kind", default="occluder", choices=("static", "moving_support", "occluder"),
                   help="which bundled sample scene to generate")
    p.add_argument("--depth", default="mono", choices=("mono", "oracle", "none"),
                   help="depth given to the reconstruction (mono = simulated depth network)")


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.out, kind=args.kind, depth=args.depth, progress=text_progress)


# --- sample-scene ----------------------------------------------------------------------------------

def _add_sample(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="folder for the scene bundle")
    p.add_argument("--kind", default="occluder",
                   help="static, moving_support, occluder (default), or a held-out suite kind: orbit, pan, "
                        "walk_forward, handheld, zoom, one_occluder, crossing_occluders, occluder_stops, "
                        "sliding_support, turntable, carried, low_texture, noise_blur (docs/BENCHMARK.md)")
    p.add_argument("--frames", type=int, default=33)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=192)
    p.add_argument("--seed", type=int, default=0)


def _run_sample(args: argparse.Namespace) -> int:
    from .sample_scene import make_scene

    scene = make_scene(kind=args.kind, num_frames=args.frames, width=args.width, height=args.height, seed=args.seed)
    scene.write_bundle(args.out)
    print(f"wrote sample scene bundle to {args.out}")
    return 0


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "demo": ("generate the bundled sample scene and run the mask pipeline on it", _add_demo, _run_demo),
    "masks": ("4D-aware masks: reconstruct, place, propagate, reproject", _add_masks, _run_masks),
    "bench": ("score the mask pipeline on ground-truth scene bundles", _add_bench, _run_bench),
    "sample-scene": ("write a synthetic scene bundle with exact ground truth", _add_sample, _run_sample),
    "eval-reconstruction": ("camera / depth / moving-mask errors of 4D Reconstruct on scene bundles",
                            _add_eval, _run_eval),
}


def _all_commands() -> dict[str, tuple[str, Callable, Callable]]:
    from .training.commands import COMMANDS as TRAINING

    return {**COMMANDS, **TRAINING}


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with `only`, the other subcommands get no arguments (adding the training ones
    imports torch, about 550 MB of resident memory that `masks` would carry for nothing)."""
    parser = argparse.ArgumentParser(prog="insertanywhere", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add, run) in _all_commands().items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            add(p)
        p.set_defaults(run=run)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(chosen if chosen in _all_commands() else None).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except InsertAnywhereError as error:
        print(f"insertanywhere {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
