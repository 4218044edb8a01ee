"""Fixtures of the LoRA training tests: tiny removal data, a tiny Wan VACE folder, a built
dataset and one short training run reused by several tests (helpers: train_helpers.py)."""

from __future__ import annotations

import pytest
from train_helpers import CLIP_FRAMES, WIDTH, fresh_model, train_config, write_removal_clip


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


@pytest.fixture(scope="session")
def trained(dataset_dir, wan_folder, tmp_path_factory):
    """One 40-step run: (trainer, run result)."""
    from insertanywhere.training.trainer import LoraTrainer

    cfg = train_config(dataset_dir, wan_folder, tmp_path_factory.mktemp("run"))
    trainer = LoraTrainer(cfg, model=fresh_model(wan_folder))
    return trainer, trainer.run()
