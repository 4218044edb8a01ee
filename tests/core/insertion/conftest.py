"""Fixtures of the generative-half tests: tiny models written in their real file layouts, and small
synthetic videos (a textured scene with a box-shaped object mask that moves)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for tiny_models

FRAMES, HEIGHT, WIDTH = 9, 32, 48


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models run fastest single-threaded (and the CI box has two shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def scene_video(frames: int = FRAMES, height: int = HEIGHT, width: int = WIDTH, seed: int = 0) -> np.ndarray:
    """uint8 [F, H, W, 3]: a smooth gradient with mild noise, panning one pixel per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, : width + frames]
    base = np.stack([80 + 100 * xx / (width + frames), 120 + 60 * yy / height, 90 + 0 * xx], axis=-1)
    base = base + rng.normal(0, 4, base.shape)
    return np.stack([base[:, i:i + width] for i in range(frames)]).clip(0, 255).astype(np.uint8)


def box_masks(frames: int = FRAMES, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """bool [F, H, W]: a 12x16 box moving right by one pixel per frame."""
    masks = np.zeros((frames, height, width), bool)
    for i in range(frames):
        masks[i, 10:22, 12 + i:28 + i] = True
    return masks


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def wan_folder(models_dir):
    from tiny_models import build_wan_vace_folder

    return build_wan_vace_folder(models_dir / "diffusers" / "tiny-wan-vace")


@pytest.fixture(scope="session")
def wan_files(models_dir, wan_folder):
    from tiny_models import write_wan_single_files

    return write_wan_single_files(models_dir, wan_folder)


@pytest.fixture(scope="session")
def wan_model(wan_folder):
    from insertanywhere.insertion.wan import load_wan_vace

    return load_wan_vace(folder=wan_folder)


@pytest.fixture(scope="session")
def sam2_checkpoint(models_dir):
    from tiny_models import write_sam2

    return write_sam2(models_dir / "sam2")


@pytest.fixture(scope="session")
def sam2_model(sam2_checkpoint):
    from insertanywhere.insertion.sam2_refine import load_sam2

    return load_sam2(sam2_checkpoint)


@pytest.fixture
def video():
    return scene_video()


@pytest.fixture
def masks():
    return box_masks()


@pytest.fixture
def first_frame(video, masks):
    """Frame 0 with a red object painted into its mask."""
    frame = video[0].copy()
    frame[masks[0]] = (200, 40, 30)
    return frame
