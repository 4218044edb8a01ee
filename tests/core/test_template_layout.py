"""The shipped templates (the builder's output) read left to right: one group per stage, numbered in
order, nodes inside their group without overlapping (title bars included), links never running back to
an earlier stage, titles in words, notes, a readable start zoom, and download metadata for every model
file the frontend can check."""

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfyui_env import PACK_ROOT, shipped_workflows  # noqa: E402

sys.path.insert(0, str(PACK_ROOT / "scripts"))
from template_layout import MIN_SCALE, boxes  # noqa: E402

from insertanywhere.model_catalog import SOURCES, source  # noqa: E402

INSERTION = [p for p in shipped_workflows() if "_insert_" in p.stem]


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _inside(box, group) -> bool:
    x, y, w, h = group["bounding"]
    title_bar = 34  # px, a group's title at font size 24
    return x <= box[0] and box[2] <= x + w and y + title_bar <= box[1] and box[3] <= y + h


def _group_of(workflow: dict) -> dict[int, int]:
    """Node id -> number of the one group that holds it (asserts exactly one)."""
    out = {}
    for node_id, box in boxes(workflow).items():
        holders = [int(g["title"].split()[0]) for g in workflow["groups"] if _inside(box, g)]
        assert len(holders) == 1, f"node {node_id} at {box} lies in groups {holders}, not exactly one"
        out[node_id] = holders[0]
    return out


@pytest.mark.parametrize("path", shipped_workflows(), ids=lambda p: p.stem)
def test_no_two_nodes_overlap(path):
    items = sorted(boxes(_load(path)).items())
    for i, (a, box_a) in enumerate(items):
        for b, box_b in items[i + 1:]:
            apart = box_a[2] <= box_b[0] or box_b[2] <= box_a[0] or box_a[3] <= box_b[1] or box_b[3] <= box_a[1]
            assert apart, f"nodes {a} {box_a} and {b} {box_b} overlap"


@pytest.mark.parametrize("path", shipped_workflows(), ids=lambda p: p.stem)
def test_stage_groups_run_left_to_right_in_order(path):
    groups = _load(path)["groups"]
    assert len(groups) >= 5
    numbers = [int(g["title"].split()[0]) for g in groups]
    assert numbers == list(range(1, len(groups) + 1)), [g["title"] for g in groups]
    for left, right in zip(groups, groups[1:]):
        assert left["bounding"][0] + left["bounding"][2] < right["bounding"][0], (left["title"], right["title"])
    assert len({g["color"] for g in groups}) == len(groups), "each stage has its own colour"


@pytest.mark.parametrize("path", shipped_workflows(), ids=lambda p: p.stem)
def test_every_node_sits_in_one_stage_and_links_never_run_backwards(path):
    workflow = _load(path)
    stage = _group_of(workflow)
    assert set(stage.values()) == set(range(1, len(workflow["groups"]) + 1)), "a stage group is empty"
    for link_id, origin, _, target, _, _ in workflow["links"]:
        assert stage[origin] <= stage[target], f"link {link_id} runs from stage {stage[origin]} back to {stage[target]}"


@pytest.mark.parametrize("path", shipped_workflows(), ids=lambda p: p.stem)
def test_titles_are_words_and_a_start_note_comes_first(path):
    workflow = _load(path)
    for node in workflow["nodes"]:
        title = node.get("title", "")
        assert title and not re.search(r"[a-z]_[a-z]", title) and title != node["type"], (node["id"], title)
    stage = _group_of(workflow)
    notes = [n for n in workflow["nodes"] if n["type"] == "MarkdownNote"]
    start = [n for n in notes if "start here" in n["widgets_values"][0].lower()]
    assert len(start) == 1 and stage[start[0]["id"]] == 1
    first_column = min(n["pos"][0] for n in workflow["nodes"])
    assert start[0]["pos"][0] == first_column, "the start note is the leftmost node"


@pytest.mark.parametrize("path", shipped_workflows(), ids=lambda p: p.stem)
def test_start_view_is_readable_and_shows_the_first_stage(path):
    workflow = _load(path)
    view = workflow["extra"]["ds"]
    assert MIN_SCALE <= view["scale"] <= 1.0
    group = workflow["groups"][0]["bounding"]
    # canvas px = (graph + offset) * scale: the first group's top-left corner is on screen
    assert 0 <= (group[0] + view["offset"][0]) * view["scale"] < 100
    assert 0 <= (group[1] + view["offset"][1]) * view["scale"] < 100


@pytest.mark.parametrize("path", INSERTION, ids=lambda p: p.stem)
def test_every_downloadable_model_has_metadata_for_the_missing_models_dialog(path):
    checked = 0
    for node in _load(path)["nodes"]:
        listed = {m["name"]: m for m in node.get("properties", {}).get("models", [])}
        for value in node["widgets_values"]:
            known = [s for s in SOURCES if s.name == value and not s.is_folder] if isinstance(value, str) else []
            for found in known:
                entry = listed.get(found.name)
                assert entry == {"name": found.name, "url": found.url, "directory": found.folder}, (node["type"], value)
                checked += 1
        for entry in listed.values():  # the frontend reads only entries whose name is a widget value
            assert entry["name"] in node["widgets_values"]
    assert checked >= 1 + ("native" in path.stem) * 3  # SAM2, and the three Wan files on the native route


@pytest.mark.parametrize("path", INSERTION, ids=lambda p: p.stem)
def test_lora_note_says_how_to_train_or_leave_it_out(path):
    workflow = _load(path)
    lora = next(n for n in workflow["nodes"] if n["type"] in ("IA_WanVACELoRA", "LoraLoaderModelOnly"))
    note = next(n["widgets_values"][0] for n in workflow["nodes"]
                if n["type"] == "MarkdownNote" and "LoRA" in n.get("title", ""))
    for words in ("build-triplets", "insertanywhere train", "export-lora", "Ctrl+B", lora["widgets_values"][0]):
        assert words in note
    stage = _group_of(workflow)
    assert stage[next(n["id"] for n in workflow["nodes"] if n.get("title") == "Insertion LoRA" and
                      n["type"] == "MarkdownNote")] == stage[lora["id"]], "the note sits beside the LoRA node"


def test_catalog_urls_are_hugging_face_files_named_like_the_file():
    for found in SOURCES:
        assert found.url.startswith("https://huggingface.co/")
        if not found.is_folder:
            assert found.url.endswith("/resolve/main/" + found.name) or found.url.endswith("/" + found.name)
            assert "/resolve/main/" in found.url
    assert source("vae", "wan_2.1_vae.safetensors").url.endswith("split_files/vae/wan_2.1_vae.safetensors")
