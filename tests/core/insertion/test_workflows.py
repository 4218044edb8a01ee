"""The shipped insertion workflows: well-formed UI graphs whose model names are the ones users download
(and the ones install_tiny_models uses for the end-to-end runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

WORKFLOWS = Path(__file__).resolve().parents[3] / "workflows"
NAMES = ["insertanywhere_insert_diffusers", "insertanywhere_insert_native"]
MODEL_WIDGETS = {"IA_SAM2Loader": "sam2", "IA_WanVACELoader": "wan_folder", "IA_WanVACELoRA": "lora",
                 "LoraLoaderModelOnly": "lora", "UNETLoader": "transformer", "VAELoader": "vae",
                 "CLIPLoader": "text_encoder"}


@pytest.fixture(params=NAMES)
def workflow(request):
    return json.loads((WORKFLOWS / f"{request.param}.json").read_text())


def test_links_connect_existing_slots_of_the_same_type(workflow):
    nodes = {n["id"]: n for n in workflow["nodes"]}
    for link_id, origin, origin_slot, target, target_slot, kind in workflow["links"]:
        assert nodes[origin]["outputs"][origin_slot]["type"] == kind
        assert link_id in nodes[origin]["outputs"][origin_slot]["links"]
        entry = nodes[target]["inputs"][target_slot]
        assert entry["link"] == link_id and entry["type"] == kind


def test_model_names_match_the_installed_tiny_models(workflow):
    from tiny_models import WORKFLOW_NAMES

    used = {n["type"]: n["widgets_values"][0] for n in workflow["nodes"] if n["type"] in MODEL_WIDGETS}
    assert used
    for node_type, value in used.items():
        assert value == WORKFLOW_NAMES[MODEL_WIDGETS[node_type]], node_type


def test_every_stage_is_present(workflow):
    types = [n["type"] for n in workflow["nodes"]]
    for stage in ("IA_LoadVideo", "IA_Reconstruct4D", "IA_PlaceObject", "IA_Propagate", "IA_Reproject",
                  "IA_SAM2Refine", "IA_FirstFrameInpaint", "IA_CompositeBack", "SaveVideo"):
        assert stage in types
    assert ("IA_VACEInsert" in types) != ("WanVaceToVideo" in types)
