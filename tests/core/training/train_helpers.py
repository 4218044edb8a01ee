"""Helpers shared by the LoRA training tests (a unique module name: every test folder has a conftest)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for tiny_models

WIDTH, HEIGHT, SOURCE_FRAMES, CLIP_FRAMES = 48, 32, 9, 5


def mask_video(mask: np.ndarray) -> np.ndarray:
    return np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=-1)


def write_removal_clip(folder: Path, kind: str, seed: int, size=(WIDTH, HEIGHT)):
    """A sample-scene clip as present.mp4, removed.mp4, mask.mp4 in `folder`; returns the scene."""
    from insertanywhere.sample_scene import make_scene
    from insertanywhere.video import write_video

    scene = make_scene(kind, num_frames=SOURCE_FRAMES, width=size[0], height=size[1], seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_video(folder / "present.mp4", scene.composite, scene.fps, crf=4)
    write_video(folder / "removed.mp4", scene.frames, scene.fps, crf=4)
    write_video(folder / "mask.mp4", mask_video(scene.gt_visible), scene.fps, crf=4)
    return scene


def fresh_model(folder):
    """The tiny Wan VACE loaded by the sampler's own loader (diffusers folder, float32, CPU)."""
    from insertanywhere.insertion.wan import load_wan_vace

    return load_wan_vace(folder=folder, device="cpu", dtype="float32")


def train_config(dataset, folder, output, **overrides):
    from insertanywhere.training.trainer import TrainConfig

    settings = dict(dataset=str(dataset), model=str(folder), output=str(output), rank=8, alpha=4.0,
                    learning_rate=3e-3, steps=40, warmup_steps=0, precision="fp32", save_every=20, log_every=0,
                    device="cpu", gradient_checkpointing=True, seed=0)
    settings.update(overrides)
    return TrainConfig(**settings)
