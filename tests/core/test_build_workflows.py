"""The template builder: the widget layout rule (a public contract, checked against the real frontend
in tests/e2e/test_templates_browser.py) and `--check`, which CI runs without ComfyUI."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import build_workflows  # noqa: E402


def _widget(name, kind="INT", default=0, control=False, upload=False):
    return {"name": name, "type": kind, "widget": True, "default": default,
            "control_after_generate": control, "upload": upload}


SCHEMA = {"inputs": [_widget("file", "COMBO", "a.mp4", upload=True), {"name": "frames", "type": "IMAGE"},
                     _widget("seed", control=True), _widget("steps", default=20), _widget("text", "STRING", None)],
          "outputs": [{"name": "frames", "type": "IMAGE"}]}


def test_control_widget_follows_its_input_and_upload_buttons_come_last():
    layout = build_workflows.widget_layout(SCHEMA, {"seed": 7, "text": "hi"})
    assert layout == [("file", "a.mp4"), ("seed", 7), ("control_after_generate", "fixed"), ("steps", 20),
                      ("text", "hi"), ("upload", "image")]


def test_linked_widget_keeps_its_default_and_a_widget_without_default_needs_a_value():
    layout = build_workflows.widget_layout(SCHEMA, {"steps": ("other", "INT"), "text": ""})
    assert ("steps", 20) in layout
    with pytest.raises(ValueError, match="text"):
        build_workflows.widget_layout(SCHEMA, {})


def test_built_node_stores_the_layout_values_and_links_only_sockets():
    spec = [("src", "Src", {}), ("node", "Node", {"frames": ("src", "frames"), "seed": 3, "text": "x"})]
    schemas = {"Src": {"inputs": [], "outputs": [{"name": "frames", "type": "IMAGE"}]}, "Node": SCHEMA}
    workflow = build_workflows.build(spec, schemas)
    node = workflow["nodes"][1]
    assert node["widgets_values"] == ["a.mp4", 3, "fixed", 20, "x", "image"]
    assert node["inputs"] == [{"name": "frames", "type": "IMAGE", "link": 1}]
    assert workflow["links"] == [[1, 1, 0, 2, 0, "IMAGE"]]


def test_committed_templates_match_a_rebuild_from_the_schema_snapshot(capsys):
    """What CI runs: `python scripts/build_workflows.py --check` (no ComfyUI needed)."""
    assert build_workflows.main(["--check"]) == 0, capsys.readouterr().out


def test_check_reports_a_drifted_template(tmp_path):
    committed = (build_workflows.ROOT / "workflows" / "insertanywhere_masks.json").read_text()
    drifted = json.loads(committed)
    drifted["nodes"][0]["widgets_values"].insert(1, "image")  # the old upload placement
    path = tmp_path / "insertanywhere_masks.json"
    path.write_text(json.dumps(drifted, indent=1) + "\n")
    problems = build_workflows.check({path: committed})
    assert len(problems) == 1
    changed = [line for line in problems[0].splitlines()[2:] if line[:1] in "+-"]
    assert changed == ['-    "image",']
    assert build_workflows.check({path: path.read_text()}) == []
