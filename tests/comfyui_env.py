"""Shared helpers for the tiers that need a ComfyUI checkout (named by COMFYUI_PATH)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

PACK_ROOT = Path(__file__).resolve().parents[1]
COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
PACK_DIR_NAME = "comfyui-insertanywhere"  # the pack folder name under custom_nodes in tier (c)
EXECUTED: set[str] = set()  # node ids run by tier (b), checked at session end (tests/comfy/conftest.py)

needs_comfyui = pytest.mark.skipif(
    not (COMFYUI_PATH and Path(COMFYUI_PATH, "main.py").is_file()),
    reason="set COMFYUI_PATH to a ComfyUI checkout to run the ComfyUI tiers",
)


def declared_node_ids() -> list[str]:
    """Every node id declared in nodes/*.py (read as text, so nothing is imported)."""
    ids = []
    for path in sorted((PACK_ROOT / "nodes").glob("*.py")):
        ids += re.findall(r'node_id="(IA_\w+)"', path.read_text())
    return ids


def shipped_workflows() -> list[Path]:
    return sorted((PACK_ROOT / "workflows").glob("*.json"))
