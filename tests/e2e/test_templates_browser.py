"""Tier (c): every shipped template, opened in the real ComfyUI frontend the way a user opens it
(Templates -> Custom Nodes -> comfyui-insertanywhere -> the card), run with the UI's Run button and
checked in /history; no converter of ours between the workflow file and the server.

Runs against the frontend the ComfyUI checkout pins, and against another frontend build when
COMFYUI_FRONTEND_ROOT names its static folder (e.g. comfyui-frontend-package 1.58.1's `static`).
The insertion templates run on tiny random models in the server's temporary models folder (the native
one's text encoder is a random full-size UMT5-XXL, the only kind ComfyUI's CLIPLoader takes for Wan); their
video must be the sample with only the object's region replaced.
Screenshots: test-artifacts/template_<name>_<frontend>.png (whole graph after the run) and
card_<name>_<frontend>.png (its first stages, for scripts/make_thumbnails.py);
timings: test-artifacts/template_runs_<frontend>.json.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import build_workflows  # noqa: E402
import ui  # noqa: E402
from comfyui_env import PACK_ROOT, shipped_workflows  # noqa: E402
from conftest import served  # noqa: E402

pytestmark = pytest.mark.e2e

ARTIFACTS = PACK_ROOT / "test-artifacts"
OUTPUT_NODES = ("SaveImage", "SaveVideo", "PreviewImage")
TEMPLATES = [path.stem for path in shipped_workflows()]
FRONTENDS = ["pinned", "env"]  # the checkout's pinned frontend; COMFYUI_FRONTEND_ROOT's build
RUN_TIMEOUT_S = 3600  # a template's run on a busy 2-core CPU; each takes seconds to minutes when idle
# ComfyUI's CLIPLoader (type wan) builds UMT5-XXL from its fixed config whatever the file holds, so the
# native template runs on a random full-size encoder (conftest's full_umt5, 5.7 GB, ~90 s an encode on CPU).
NEEDS_FULL_UMT5 = {"insertanywhere_insert_native"}


@functools.lru_cache(maxsize=1)
def _specs() -> dict:
    return build_workflows.all_workflows()


def _intended(name: str) -> dict[int, tuple[str, list[tuple[str, object]]]]:
    """{node id: (type, [(widget name, value)])} as the builder lays the template out."""
    schemas = build_workflows.read_snapshot()
    return {index + 1: (node_type, build_workflows.widget_layout(schemas[node_type], values))
            for index, (_, node_type, values) in enumerate(_specs()[name])}


@pytest.fixture(scope="module", params=FRONTENDS)
def ui_server(request, tmp_path_factory):
    """A ComfyUI server serving one frontend, with tiny models installed under the templates' names."""
    if request.param == "pinned":
        server = request.getfixturevalue("comfy_server")
        _install_models(server)
        yield server
        return
    root = os.environ.get("COMFYUI_FRONTEND_ROOT")
    if not (root and Path(root, "index.html").is_file()):
        pytest.skip("set COMFYUI_FRONTEND_ROOT to a frontend build's static folder to test a second frontend")
    for server in served(tmp_path_factory.mktemp("comfy_fe"), Path(root)):
        _install_models(server)
        yield server


def _install_models(server) -> None:
    """Tiny models under the templates' names; the native template's VAE at the full Wan 2.1 width, which
    ComfyUI's VAELoader fixes (random weights, 127M parameters)."""
    import tiny_models
    from safetensors.torch import save_file

    names = tiny_models.install_tiny_models(server.models_dir)
    vae = server.models_dir / "vae" / names["vae"]
    if vae.stat().st_size < 50_000_000:  # still the tiny one
        save_file(tiny_models.full_width_wan_vae_state_dict(), str(vae))


def _install_full_umt5(server, path: Path) -> None:
    """The template's text encoder name points at the full-size random encoder (a link, not a copy)."""
    import tiny_models

    target = server.models_dir / "text_encoders" / tiny_models.WORKFLOW_NAMES["text_encoder"]
    if target.is_symlink() and target.resolve() == path.resolve():
        return
    target.unlink(missing_ok=True)
    target.symlink_to(path)


@pytest.fixture(scope="module")
def page(ui_server):
    with ui.browser_page(ui_server) as pg:
        yield pg


def _tag(page) -> str:
    return ui.frontend_version(page)


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_widgets_are_the_builders_layout(page, name):
    """The widget order is a public contract: the frontend names each stored value as the builder meant."""
    ui.open_template(page, name)
    loaded = ui.graph_widgets(page)
    stored = {node["id"]: node["widgets_values"] for node in json.loads((PACK_ROOT / "workflows" / f"{name}.json")
                                                                        .read_text())["nodes"]}
    schemas = build_workflows.read_snapshot()
    for node_id, (node_type, layout) in _intended(name).items():
        widgets = loaded[str(node_id)]
        assert widgets["type"] == node_type
        pairs = list(zip(widgets["names"], widgets["values"]))
        assert pairs[:len(layout)] == layout, f"{name} node {node_id} {node_type}"
        assert widgets["values"][:len(layout)] == (stored[node_id] or []), f"{name} node {node_id}: stored values moved"
        # After them only widgets the frontend adds for itself (a video preview once it loads), no input.
        inputs = {entry["name"] for entry in schemas[node_type]["inputs"]}
        assert not inputs & set(widgets["names"][len(layout):]), (name, node_id, widgets["names"])


@pytest.mark.parametrize("name", TEMPLATES)
def test_api_converter_of_the_tests_matches_the_frontend(page, ui_server, name):
    """tests/e2e/workflow_api.to_api (used by tests that edit a prompt) converts as the frontend does."""
    from workflow_api import to_api

    ui.open_template(page, name)
    frontend = page.evaluate("async () => (await window.iaApp.graphToPrompt()).output")
    ours = to_api(json.loads((PACK_ROOT / "workflows" / f"{name}.json").read_text()), ui_server.get("/object_info"))
    info = ui_server.get("/object_info")
    declared = {key: {*info[node["class_type"]]["input"].get("required", {}),
                      *info[node["class_type"]]["input"].get("optional", {})} for key, node in frontend.items()}
    # the frontend also sends its own preview widgets (e.g. Load Video's "video-preview"); the server ignores them
    sent = {key: {k: v for k, v in node["inputs"].items() if k in declared[key]} for key, node in frontend.items()}
    assert {key: node["inputs"] for key, node in ours.items()} == sent


def _record_run(name: str, frontend: str, seconds: float, outputs: int, status: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"template_runs_{frontend}.json"
    runs = json.loads(path.read_text()) if path.is_file() else {}
    runs[f"{name} @ {frontend}"] = {"status": status, "outputs": outputs, "seconds": round(seconds, 1)}
    path.write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")


def _fit_and_screenshot(page, path: Path) -> None:
    """The whole graph (the frontend's own Fit View command, the "." key) with the run's previews. The
    command animates the view: the picture is taken once every node is inside the canvas and the view
    has stopped moving."""
    page.keyboard.press("Escape")
    page.evaluate("async () => { await window.iaApp.extensionManager.command.execute('Comfy.Canvas.FitView'); }")
    page.wait_for_function("""() => {
        const c = window.iaApp.canvas, ds = c.ds, view = JSON.stringify([ds.scale, ds.offset]);
        const inside = window.iaApp.graph._nodes.every((n) => {
            const [x0, y0] = ds.convertOffsetToCanvas([n.pos[0], n.pos[1]]);
            const [x1, y1] = ds.convertOffsetToCanvas([n.pos[0] + n.size[0], n.pos[1] + n.size[1]]);
            return x0 >= 0 && y0 >= 0 && x1 <= c.canvas.clientWidth && y1 <= c.canvas.clientHeight;
        });
        const still = window.__iaLastView === view;
        window.__iaLastView = view;
        c.setDirty(true, true);
        return inside && still;
    }""", polling="raf", timeout=30_000)
    page.screenshot(path=str(path))


def _card_screenshot(page, path: Path) -> None:
    """The graph's first stages at a readable zoom, its whole height in view: the template card's picture
    (a whole stage chain at fit-view zoom is a thin strip with nothing legible)."""
    page.evaluate("""() => {
        const c = window.iaApp.canvas, nodes = window.iaApp.graph._nodes;
        const left = Math.min(...nodes.map((n) => n.pos[0])), top = Math.min(...nodes.map((n) => n.pos[1] - 40));
        const bottom = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
        c.ds.scale = Math.min(1, 0.95 * c.canvas.clientHeight / (bottom - top));
        c.ds.offset = [20 / c.ds.scale - left, 20 / c.ds.scale - top];
        window.__iaLastView = null;
    }""")
    page.wait_for_function("""() => {
        const c = window.iaApp.canvas, view = JSON.stringify([c.ds.scale, c.ds.offset]);
        const still = window.__iaLastView === view;
        window.__iaLastView = view;
        c.setDirty(true, true);
        return still;
    }""", polling="raf", timeout=30_000)
    page.locator("#graph-canvas").screenshot(path=str(path))


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
@pytest.mark.parametrize("name", TEMPLATES)
def test_template_runs_from_the_ui(page, ui_server, name, request):
    if name in NEEDS_FULL_UMT5:
        _install_full_umt5(ui_server, request.getfixturevalue("full_umt5"))
    ui.open_template(page, name)
    started = time.monotonic()
    entry = ui.run_and_wait(page, ui_server, timeout=RUN_TIMEOUT_S)
    seconds = time.monotonic() - started
    if name in NEEDS_FULL_UMT5:  # 5.7 GB in the server's memory: give it back before the next test
        ui_server.post("/free", {"unload_models": True, "free_memory": True})
    error = ui.execution_error(entry)
    assert error is None, json.dumps(error)[:4000]
    template = json.loads((PACK_ROOT / "workflows" / f"{name}.json").read_text())
    prompt = ui.queued_prompt(entry)
    for node_id, (_, layout) in _intended(name).items():  # the frontend sent each widget's value by name
        sent = prompt[str(node_id)]["inputs"]
        for widget, value in layout:
            if widget in sent and not isinstance(sent[widget], list):
                assert sent[widget] == value, (name, node_id, widget)
    files = []
    for node in template["nodes"]:
        if node["type"] in OUTPUT_NODES:
            produced = ui.output_files(ui_server, entry, node["id"])
            assert produced, f"{name}: output node {node['id']} ({node['type']}) produced nothing"
            assert all(path.is_file() and path.stat().st_size > 0 for path in produced)
            files += produced
    if name == "insertanywhere_masks":
        _check_masks_outputs(ui_server, entry)
    else:
        video = next(path for path in files if path.suffix == ".mp4")
        _check_composited(video, ui_server.input_dir / "insertanywhere_sample.mp4")
    ARTIFACTS.mkdir(exist_ok=True)
    _fit_and_screenshot(page, ARTIFACTS / f"template_{name}_{_tag(page)}.png")
    _card_screenshot(page, ARTIFACTS / f"card_{name}_{_tag(page)}.png")
    _record_run(name, _tag(page), seconds, len(files), "ran")


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


COMPOSITE_MARGIN_PX = 48  # beyond the object's true masks by more than Composite Back's dilate + feather + ring
CODEC_TOLERANCE = 4.0  # grey levels, mean: one more H.264 generation of the same frames


def _check_composited(video: Path, source: Path) -> None:
    """An insertion template's video is the sample with only the object's region replaced: far from the
    object (ground truth masks, grown), every frame is the original one up to the codec."""
    import cv2

    from insertanywhere.demo import bundled_sample
    from insertanywhere.video import read_video

    out, _ = read_video(video)
    original, _ = read_video(source)
    assert out.shape == original.shape, (out.shape, original.shape)
    truth = bundled_sample()
    near = np.stack([cv2.dilate((v | a).astype(np.uint8), np.ones((2 * COMPOSITE_MARGIN_PX + 1,) * 2, np.uint8))
                     for v, a in zip(truth.gt_visible, truth.gt_amodal)]).astype(bool)
    far = ~near
    assert far.mean() > 0.3, far.mean()
    error = np.abs(out.astype(np.float32) - original.astype(np.float32)).mean(axis=-1)
    assert error[far].mean() < CODEC_TOLERANCE, error[far].mean()


def _edit_widget(page, node_id: int, widget: str, value) -> None:
    """Click the widget on the canvas (the frontend opens its value prompt), type the value, Enter."""
    point = page.evaluate("""([id, name]) => {
        const app = window.iaApp, canvas = app.canvas, node = app.graph.getNodeById(id);
        canvas.ds.scale = 1;
        canvas.ds.offset = [-node.pos[0] + 60, -node.pos[1] + 90];
        canvas.setDirty(true, true);
        canvas.draw(true, true);
        const w = node.widgets.find((w) => w.name === name), rect = canvas.canvas.getBoundingClientRect();
        const [x, y] = canvas.ds.convertOffsetToCanvas(
            [node.pos[0] + node.size[0] / 2, node.pos[1] + w.y + window.LiteGraph.NODE_WIDGET_HEIGHT / 2]);
        return [rect.left + x, rect.top + y];
    }""", [node_id, widget])
    page.mouse.click(*point)
    box = page.locator(".graphdialog .value")
    box.wait_for(state="visible", timeout=10_000)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_function("([id, name, value]) => window.iaApp.graph.getNodeById(id)"
                           ".widgets.find((w) => w.name === name).value === value", arg=[node_id, widget, value],
                           timeout=10_000)


@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_edited_template_saved_and_reopened_runs_with_the_edit(page, ui_server, tmp_path):
    """Edit the visible masks' file prefix on the canvas, save the workflow as the frontend writes it, reload
    the page, open the file through the UI's file input, run: the masks are saved under the edited name."""
    from insertanywhere.demo import DEMO_FRAMES

    prefix = "insertanywhere/edited_visible"
    template = json.loads((PACK_ROOT / "workflows" / "insertanywhere_masks.json").read_text())
    node_id = next(n["id"] for n in template["nodes"] if n["widgets_values"] == ["insertanywhere/visible"])
    ui.open_template(page, "insertanywhere_masks")
    _edit_widget(page, node_id, "filename_prefix", prefix)
    saved = ui.save_workflow_json(page, tmp_path / "edited.json")
    node = next(n for n in saved["nodes"] if n["id"] == node_id)
    assert node["widgets_values"] == [prefix]
    ui.open_app(page, ui_server.url)
    page.set_input_files("#comfy-file-input", str(tmp_path / "edited.json"))
    page.wait_for_function("([id, prefix]) => window.iaApp.graph.getNodeById(id)?.widgets[0].value === prefix",
                           arg=[node["id"], prefix], timeout=30_000)
    entry = ui.run_and_wait(page, ui_server, timeout=RUN_TIMEOUT_S)
    assert ui.execution_error(entry) is None, json.dumps(ui.execution_error(entry))[:3000]
    assert ui.queued_prompt(entry)[str(node["id"])]["inputs"]["filename_prefix"] == prefix
    files = ui.output_files(ui_server, entry, node["id"])
    assert len(files) == DEMO_FRAMES and all(f.name.startswith("edited_visible") and f.is_file() for f in files)
    _fit_and_screenshot(page, ARTIFACTS / f"template_insertanywhere_masks_edited_{_tag(page)}.png")
