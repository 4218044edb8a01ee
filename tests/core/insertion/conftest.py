"""Fixtures of the generative-half tests: tiny models written in their real file layouts, and small
synthetic videos (a textured scene with a box-shaped object mask that moves)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for tiny_models

from insertion_helpers import box_masks, scene_video  # noqa: E402


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
