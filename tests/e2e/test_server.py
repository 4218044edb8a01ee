"""Tier (c): the real ComfyUI server with this pack — load, list, and run every shipped workflow."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfyui_env import PACK_DIR_NAME, declared_node_ids, shipped_workflows  # noqa: E402
from workflow_api import to_api  # noqa: E402

pytestmark = pytest.mark.e2e


def test_pack_loads_and_every_node_is_listed(comfy_server):
    info = comfy_server.get("/object_info")
    missing = sorted(set(declared_node_ids()) - set(info))
    assert not missing, f"missing from /object_info: {missing}\n{comfy_server.log()[-3000:]}"
    log = comfy_server.log()
    failures = [line for line in log.splitlines()
                if PACK_DIR_NAME in line and ("IMPORT FAILED" in line or "comfy_entrypoint" in line)]
    assert not failures, log[-3000:]
    assert f"extra_nodes/{PACK_DIR_NAME}" in log  # listed among the imported custom nodes
    for node_id in declared_node_ids():
        assert info[node_id]["category"].startswith("InsertAnywhere")


def test_workflow_templates_lists_every_shipped_workflow(comfy_server):
    templates = comfy_server.get("/workflow_templates")
    assert sorted(templates.get(PACK_DIR_NAME, [])) == sorted(p.stem for p in shipped_workflows())
    for path in shipped_workflows():  # served to the template browser as stored
        served = comfy_server.get(f"/api/workflow_templates/{PACK_DIR_NAME}/{path.name}")
        assert served == json.loads(path.read_text())


def _prepare_models(server) -> None:
    """Tiny random-initialised models for workflows that sample (built offline, never downloaded)."""
    try:
        import tiny_models
    except ImportError:
        return
    if hasattr(tiny_models, "install_tiny_models"):
        tiny_models.install_tiny_models(server.models_dir)


def _check_masks_outputs(server, entry) -> None:
    """The server's masks are the CLI's masks for the same inputs (one core, two front ends), and they
    match the sample's ground truth as well as mono depth allows (the benchmark measures quality)."""
    from insertanywhere.bench import frame_ious, score
    from insertanywhere.demo import DEMO_FRAMES, bundled_sample
    from insertanywhere.masks.pipeline import run_masks
    from PIL import Image

    saved = [image for output in entry["outputs"].values() for image in output.get("images", [])
             if image["filename"].startswith("visible")]
    assert len(saved) == DEMO_FRAMES
    visible = np.stack([np.asarray(Image.open(server.base / "output" / image["subfolder"] / image["filename"]))
                        for image in sorted(saved, key=lambda i: i["filename"])])[..., 0] >= 128
    inputs = server.input_dir
    cli = run_masks(video=inputs / "insertanywhere_sample.mp4",
                    placement=inputs / "insertanywhere_sample_placement.json",
                    object_mesh=inputs / "insertanywhere_sample_object.ply",
                    depth=inputs / "insertanywhere_sample_depth_mono.npz")
    assert frame_ious(visible, cli.visible).min() >= 0.99
    truth = bundled_sample()
    scores = score(visible, truth.gt_visible, truth.gt_amodal)
    assert scores["mean"] >= 0.7, scores


# Workflows the real server can only validate here: ComfyUI's CLIPLoader always builds the full-size
# UMT5-XXL (5.7B) and VAELoader the full Wan VAE, so no tiny stand-in loads. Their graph is executed
# in-process with ComfyUI's own node classes in tests/comfy/test_insertion_nodes.py.
VALIDATE_ONLY = {"insertanywhere_insert_native"}


@pytest.mark.parametrize("workflow", shipped_workflows(), ids=lambda p: p.stem)
def test_shipped_workflow_runs(comfy_server, workflow):
    _prepare_models(comfy_server)
    prompt = to_api(json.loads(workflow.read_text()), comfy_server.get("/object_info"))
    if workflow.stem in VALIDATE_ONLY:
        comfy_server.queue(prompt)  # asserts the server accepted every node, link, value and model file
        comfy_server.post("/interrupt", {})
        comfy_server.wait_idle()
        return
    entry = comfy_server.run_prompt(prompt, timeout=900)
    data = json.loads(workflow.read_text())
    output_nodes = [str(n["id"]) for n in data["nodes"] if n["type"] in ("SaveImage", "SaveVideo", "PreviewImage")]
    for node_id in output_nodes:
        produced = entry["outputs"].get(node_id, {})
        files = produced.get("images", []) + produced.get("videos", [])
        assert files, f"output node {node_id} of {workflow.name} produced nothing: {produced}"
        for item in files:
            path = comfy_server.base / item.get("type", "output") / item.get("subfolder", "") / item["filename"]
            assert path.is_file() and path.stat().st_size > 0, path
    if workflow.stem == "insertanywhere_masks":
        _check_masks_outputs(comfy_server, entry)
