"""Shared fixtures of the LoRA training tests: tiny removal data, a tiny Wan VACE folder,
a built dataset and one short training run reused by several tests."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for tiny_models

WIDTH, HEIGHT, SOURCE_FRAMES, CLIP_FRAMES = 48, 32, 9, 5


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models run fastest single-threaded (and the CI box has two shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


@pytest.fixture(scope="session")
def removal_data(tmp_path_factory):
    """Two clips in the 'simple' layout: <root>/<clip>/{present,removed,mask}.mp4, with their scenes."""
    root = tmp_path_factory.mktemp("removal")
    scenes = {f"clip{i}": write_removal_clip(root / f"clip{i}", kind, seed=i)
              for i, kind in enumerate(("static", "moving_support"))}
    return root, scenes


@pytest.fixture(scope="session")
def dataset_dir(removal_data, tmp_path_factory):
    from insertanywhere.training.triplets import LAYOUTS, BuildConfig, build_triplets

    root, _ = removal_data
    out = tmp_path_factory.mktemp("dataset")
    cfg = BuildConfig(num_frames=CLIP_FRAMES, max_side=WIDTH, reference_variants=2, prompt="a vase on the table")
    result = build_triplets(root, out, cfg, LAYOUTS["simple"])
    assert len(result.written) == 2, result.skipped
    return out


@pytest.fixture(scope="session")
def wan_folder(tmp_path_factory):
    from tiny_models import build_wan_vace_folder

    return build_wan_vace_folder(tmp_path_factory.mktemp("wan") / "tiny-wan-vace")


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


@pytest.fixture(scope="session")
def trained(dataset_dir, wan_folder, tmp_path_factory):
    """One 40-step run: (trainer, run result)."""
    from insertanywhere.training.trainer import LoraTrainer

    cfg = train_config(dataset_dir, wan_folder, tmp_path_factory.mktemp("run"))
    trainer = LoraTrainer(cfg, model=fresh_model(wan_folder))
    return trainer, trainer.run()
