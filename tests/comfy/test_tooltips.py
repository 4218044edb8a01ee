"""Every input and output of every IA_* node explains itself: the frontend shows the tooltip on hover
(also on links of the pack's own types, which have no widget to explain them)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfyui_env import declared_node_ids  # noqa: E402


def _missing(schema) -> list[str]:
    missing = [f"input {i.id}" for i in schema.inputs if not (i.tooltip or "").strip()]
    for index, output in enumerate(schema.outputs):
        if not (output.tooltip or "").strip():
            missing.append(f"output {output.display_name or output.id or index}")
    return missing


def test_every_input_and_output_has_a_tooltip(node_classes):
    assert sorted(node_classes) == sorted(declared_node_ids())  # the walk covers every node of the pack
    missing = {node_id: _missing(cls.GET_SCHEMA()) for node_id, cls in sorted(node_classes.items())}
    missing = {node_id: names for node_id, names in missing.items() if names}
    assert not missing, f"inputs/outputs without a tooltip: {missing}"


def test_object_info_carries_the_tooltips(node_classes):
    """What /object_info sends the frontend: V3 tooltips land in each input spec and in output_tooltips."""
    info = node_classes["IA_VACEInsert"].GET_NODE_INFO_V1()
    required = info["input"]["required"]
    for name in ("seed", "steps", "scheduler", "negative_prompt", "model"):
        assert required[name][1]["tooltip"].strip(), name
    assert all(t.strip() for t in info["output_tooltips"])
