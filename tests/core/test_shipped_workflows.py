"""Shipped workflows: valid UI-format JSON whose sample placement matches the bundled sample scene."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfyui_env import declared_node_ids, shipped_workflows  # noqa: E402


@pytest.fixture(scope="module")
def sample_placement():
    from insertanywhere.demo import bundled_sample

    return bundled_sample().placement


@pytest.mark.parametrize("path", shipped_workflows(), ids=lambda p: p.stem)
def test_workflow_is_linked_ui_json(path):
    data = json.loads(path.read_text())
    ids = {node["id"] for node in data["nodes"]}
    for link_id, origin, _, target, _, _ in data["links"]:
        assert origin in ids and target in ids, f"link {link_id} dangles"
    ours = [n["type"] for n in data["nodes"] if n["type"].startswith("IA_")]
    assert ours and set(ours) <= set(declared_node_ids())


@pytest.mark.parametrize("path", shipped_workflows(), ids=lambda p: p.stem)
def test_sample_placement_matches_the_sample_scene(path, sample_placement):
    """The sample scene is rendered by code: when its code changes, rebuild the workflows
    (COMFYUI_PATH=... python scripts/build_workflows.py) or the template places the object wrongly."""
    data = json.loads(path.read_text())
    for node in data["nodes"]:
        if node["type"] == "IA_PlaceObject":
            stored = json.loads(node["widgets_values"][0])
            assert stored["anchor"] == pytest.approx(sample_placement["anchor"], abs=1e-6)
            assert stored["height_px"] == pytest.approx(sample_placement["height_px"], abs=1e-6)
            assert stored["yaw_deg"] == pytest.approx(sample_placement["yaw_deg"], abs=1e-6)
