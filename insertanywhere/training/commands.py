"""Command-line front ends of the training half, for `insertanywhere.cli`.

Each command is (help, add_arguments, run) like the other subcommands:
  build-triplets   object-removal data -> insertion dataset (manifest.jsonl)
  train            LoRA training on such a dataset, exported for diffusers and ComfyUI
  export-lora      a training checkpoint -> both export formats
`build_triplets_main(argv)`, `train_main(argv)` and `export_lora_main(argv)` run one
command standalone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional

from ..errors import InsertAnywhereError
from ..progress import text_progress


# ----------------------------------------------------------------------------- build-triplets


def add_build_triplets_arguments(p: argparse.ArgumentParser) -> None:
    from .degrade import Degradation
    from .triplets import LAYOUTS, BuildConfig

    d = BuildConfig()
    p.add_argument("--data", required=True, type=Path, help="folder with object-removal triples (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="dataset folder to write (manifest.jsonl + samples/)")
    p.add_argument("--layout", default="rose", choices=sorted(LAYOUTS),
                   help="folder names: rose = *_Unedited/*_Edited/*_Masked, simple = present/removed/mask")
    p.add_argument("--present", help="name of the object-present videos (overrides the layout)")
    p.add_argument("--removed", help="name of the object-removed videos (overrides the layout)")
    p.add_argument("--mask", help="name of the mask videos (overrides the layout)")
    p.add_argument("--references", type=Path, help="extra reference candidates: <dir>/<clip id>/*.png")
    p.add_argument("--vision-model", type=Path,
                   help="local vision model folder (e.g. DINOv2, transformers format) to rank reference candidates")
    p.add_argument("--frames", type=int, default=d.num_frames, help="frames per sample, 4k+1 (default %(default)s)")
    p.add_argument("--stride", type=int, default=d.stride, help="keep every n-th source frame")
    p.add_argument("--clips-per-video", type=int, default=d.clips_per_video)
    p.add_argument("--max-side", type=int, default=d.max_side, help="longer side of the samples (multiple of 16)")
    p.add_argument("--dilate", type=float, default=d.dilate, help="mask dilation, fraction of the object size")
    p.add_argument("--dilate-px", type=int, default=d.dilate_px, help="minimum mask dilation in pixels")
    p.add_argument("--no-effects", action="store_true",
                   help="do not grow the mask over present/removed differences (shadows, reflections)")
    p.add_argument("--effect-threshold", type=float, default=d.effect_threshold)
    p.add_argument("--reference-candidates", type=int, default=d.reference_candidates)
    p.add_argument("--reference-variants", type=int, default=d.reference_variants,
                   help="augmented references per sample (flip, crop, resize, colour jitter); 0 = clean only")
    p.add_argument("--degrade-prob", type=float, default=Degradation().prob,
                   help="chance to blur / add noise / JPEG-compress a sample's input video")
    p.add_argument("--prompt", default=d.prompt, help="text prompt stored with every sample")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--limit", type=int, default=0, help="use only the first N triples (0 = all)")
    p.add_argument("--device", default="cpu", help="device of the vision model")


def run_build_triplets(args: argparse.Namespace) -> int:
    from .degrade import Degradation
    from .triplets import LAYOUTS, BuildConfig, Layout, build_triplets, load_vision_embedder

    base = LAYOUTS[args.layout]
    layout = Layout(args.present or base.present, args.removed or base.removed, args.mask or base.mask)
    cfg = BuildConfig(
        num_frames=args.frames, stride=args.stride, clips_per_video=args.clips_per_video, max_side=args.max_side,
        dilate=args.dilate, dilate_px=args.dilate_px, cover_effects=not args.no_effects,
        effect_threshold=args.effect_threshold, reference_candidates=args.reference_candidates,
        reference_variants=args.reference_variants, degrade=Degradation(prob=args.degrade_prob),
        prompt=args.prompt, seed=args.seed)
    embedder = load_vision_embedder(args.vision_model, args.device) if args.vision_model else None
    result = build_triplets(args.data, args.out, cfg, layout, args.references, embedder, args.limit,
                            text_progress("triplets"))
    for note in result.skipped:
        print(f"skipped: {note}", file=sys.stderr)
    print(f"wrote {args.out}: {result.summary()}")
    return 0 if result.written or not result.skipped else 1


# ----------------------------------------------------------------------------- train


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from .trainer import PRECISIONS, TrainConfig

    d = TrainConfig(dataset="", model="-", output="")
    p.add_argument("--dataset", required=True, type=Path, help="folder written by build-triplets")
    p.add_argument("--model", type=Path, help="diffusers Wan VACE folder (e.g. Wan2.1-VACE-1.3B-diffusers)")
    p.add_argument("--transformer-file", type=Path,
                   help="Wan VACE transformer single file (ComfyUI diffusion_models/), instead of the folder's")
    p.add_argument("--vae-file", type=Path, help="Wan 2.1 VAE single file (ComfyUI vae/)")
    p.add_argument("--text-encoder-file", type=Path, help="umt5-xxl single file (ComfyUI text_encoders/)")
    p.add_argument("--out", required=True, type=Path, help="output folder (checkpoints, log, exported LoRA)")
    p.add_argument("--name", default=d.name, help="file name stem of the exported LoRA")
    p.add_argument("--rank", type=int, default=d.rank)
    p.add_argument("--alpha", type=float, default=d.alpha)
    p.add_argument("--lr", type=float, default=d.learning_rate)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--warmup", type=int, default=d.warmup_steps)
    p.add_argument("--grad-accum", type=int, default=d.grad_accum)
    p.add_argument("--mask-weight", type=float, default=d.mask_weight,
                   help="a in L = a*L_mask + (1-a)*L_rest (default %(default)s)")
    p.add_argument("--surround", type=int, default=d.surround_cells,
                   help="latent cells (8 px) around the mask that count as mask region")
    p.add_argument("--include-vace", action="store_true", help="also adapt the VACE blocks")
    p.add_argument("--no-gradient-checkpointing", action="store_true")
    p.add_argument("--precision", default=d.precision, choices=sorted(PRECISIONS))
    p.add_argument("--shift", type=float, default=d.timestep_shift, help="flow-matching timestep shift")
    p.add_argument("--mask-fill", default=d.mask_fill, choices=["gray", "keep"],
                   help="pixels under the mask as the sampler will fill them (its mask_fill setting)")
    p.add_argument("--save-every", type=int, default=d.save_every)
    p.add_argument("--keep", type=int, default=d.keep_checkpoints, help="checkpoints kept")
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-cache", action="store_true", help="encode latents in memory instead of caching them")
    p.add_argument("--no-resume", action="store_true", help="start fresh even if checkpoints exist")
    p.add_argument("--device", default=d.device)


def _print_row(row: dict) -> None:
    if "event" in row:
        rest = ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "event")
        print(f"[{row['event']}] {rest}", file=sys.stderr)
    else:
        print(f"step {row['step']}: loss {row['loss']:.4f} (mask {row['loss_mask']:.4f}, rest {row['loss_rest']:.4f})"
              f" lr {row['lr']:.2e} {row['seconds']:.0f}s", file=sys.stderr)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def run_train(args: argparse.Namespace) -> int:
    from .trainer import LoraTrainer, TrainConfig

    cfg = TrainConfig(
        dataset=str(args.dataset), output=str(args.out), model=str(args.model or ""),
        transformer_file=str(args.transformer_file or ""), vae_file=str(args.vae_file or ""),
        text_encoder_file=str(args.text_encoder_file or ""), mask_fill=args.mask_fill, name=args.name, rank=args.rank,
        alpha=args.alpha, learning_rate=args.lr, steps=args.steps, warmup_steps=args.warmup,
        grad_accum=args.grad_accum, mask_weight=args.mask_weight, surround_cells=args.surround,
        include_vace_blocks=args.include_vace, gradient_checkpointing=not args.no_gradient_checkpointing,
        precision=args.precision, timestep_shift=args.shift, save_every=args.save_every,
        keep_checkpoints=args.keep, log_every=args.log_every, seed=args.seed, cache_latents=not args.no_cache,
        device=args.device)
    result = LoraTrainer(cfg, log=_print_row).run(resume=not args.no_resume)
    print(f"wrote {result['diffusers']}\nwrote {result['comfyui']}")
    return 0


# ----------------------------------------------------------------------------- export-lora


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="checkpoints/step-NNNNNN folder of a training run")
    p.add_argument("--out", required=True, type=Path, help="folder for the exported files")
    p.add_argument("--name", default="insertion_lora")


def run_export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint

    diffusers_path, comfy_path = export_checkpoint(args.checkpoint, args.out, args.name)
    print(f"wrote {diffusers_path}\nwrote {comfy_path}")
    return 0


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "build-triplets": ("turn object-removal videos into an insertion training dataset",
                       add_build_triplets_arguments, run_build_triplets),
    "train": ("train the insertion LoRA on a build-triplets dataset", add_train_arguments, run_train),
    "export-lora": ("export a training checkpoint for diffusers and ComfyUI", add_export_arguments, run_export),
}


def _main(name: str, argv: Optional[list[str]]) -> int:
    help_text, add, run = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"insertanywhere {name}", description=help_text)
    add(parser)
    args = parser.parse_args(argv)
    try:
        return int(run(args) or 0)
    except InsertAnywhereError as error:
        print(f"insertanywhere {name}: error: {error}", file=sys.stderr)
        return 2


def build_triplets_main(argv: Optional[list[str]] = None) -> int:
    return _main("build-triplets", argv)


def train_main(argv: Optional[list[str]] = None) -> int:
    return _main("train", argv)


def export_lora_main(argv: Optional[list[str]] = None) -> int:
    return _main("export-lora", argv)
