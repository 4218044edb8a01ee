"""Tier (c), issue #12 point 4: files people drop in, in the real frontend against the real server.

Object to 3D (Mesh) and 4D Reconstruct get an upload button and a drop target: the button's file
chooser and a synthetic drop of a File both upload into ComfyUI/input and pick the file, and a dropped
mesh never reaches the frontend's workflow loader ("Unable to find workflow"). Load Video shows the
source's size, fps and frame count and what its knobs load before any run. Screenshots go to
test-artifacts/inputs_*.png. Skips like the other browser tests.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from browser import ARTIFACTS, frontend_version, open_page, show_node  # noqa: E402
from comfyui_env import PACK_ROOT  # noqa: E402

pytestmark = pytest.mark.e2e

WORKFLOW = PACK_ROOT / "workflows" / "insertanywhere_masks.json"


def _cube_ply(size: float) -> bytes:
    """An ASCII PLY cube with edge `size` (8 vertices, 12 triangles)."""
    corners = [(x, y, z) for x in (0, size) for y in (0, size) for z in (0, size)]
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1), (2, 3, 7), (2, 7, 6),
             (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    lines = ["ply", "format ascii 1.0", f"element vertex {len(corners)}", "property float x", "property float y",
             "property float z", f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    lines += [f"{x} {y} {z}" for x, y, z in corners] + [f"3 {a} {b} {c}" for a, b, c in faces]
    return ("\n".join(lines) + "\n").encode()


def _depth_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, depth=np.full((5, 8, 8), 2.0, np.float32))
    return buffer.getvalue()


def _node_id(workflow: dict, node_type: str) -> int:
    return next(n["id"] for n in workflow["nodes"] if n["type"] == node_type)


@pytest.fixture(scope="module")
def page(comfy_server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open_page(comfy_server) as pg:
        yield pg


def _open_template(pg) -> dict:
    """The masks template, freshly loaded (each test starts from it, in any order)."""
    workflow = json.loads(WORKFLOW.read_text())
    pg.evaluate("async (wf) => { await window.iaApp.loadGraphData(wf); }", workflow)
    return workflow


def _widget(pg, node: int, name: str):
    return pg.evaluate(f"() => window.iaNode({node}).widgets.find((w) => w.name === {json.dumps(name)})?.value")


def _client_point(pg, node: int, widget: str | None = None) -> list[float]:
    """Client coordinates of a node's canvas-drawn widget (its middle), or of the node's middle."""
    return pg.evaluate(f"""() => {{
        const app = window.iaApp, node = window.iaNode({node}), name = {json.dumps(widget)};
        let x = node.pos[0] + node.size[0] / 2, y = node.pos[1] + node.size[1] / 2;
        if (name) {{
            const w = node.widgets.find((w) => w.name === name);
            y = node.pos[1] + (w.y ?? w.last_y) + (w.computedHeight ?? window.LiteGraph.NODE_WIDGET_HEIGHT) / 2;
        }}
        const [cx, cy] = app.canvas.ds.convertOffsetToCanvas([x, y]);
        const rect = app.canvas.canvas.getBoundingClientRect();
        return [rect.left + cx, rect.top + cy];
    }}""")


def _drop(pg, node: int, name: str, data: bytes) -> None:
    """Drag a file over the node and drop it, as a file from the desktop arrives."""
    x, y = _client_point(pg, node)
    pg.evaluate("""([x, y, name, b64]) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: "" }));
        const canvas = window.iaApp.canvas.canvas;
        const init = { bubbles: true, cancelable: true, clientX: x, clientY: y, dataTransfer: transfer };
        canvas.dispatchEvent(new DragEvent("dragover", init));
        canvas.dispatchEvent(new DragEvent("drop", init));
    }""", [x, y, name, base64.b64encode(data).decode()])


def test_upload_buttons_follow_every_widget_and_are_not_saved(page):
    workflow = _open_template(page)
    for node_type, combo in (("IA_ObjectFromMesh", "mesh_file"), ("IA_Reconstruct4D", "depth_file")):
        node = _node_id(workflow, node_type)
        names = page.evaluate(f"() => window.iaNode({node}).widgets.map((w) => w.name)")
        assert names[-1] == f"upload_{combo}", names  # after every widget of the node's inputs
        saved = page.evaluate(f"() => window.iaNode({node}).serialize().widgets_values")
        stored = next(n for n in workflow["nodes"] if n["id"] == node)["widgets_values"]
        assert saved == stored  # the button adds nothing to the saved workflow


def test_upload_button_uploads_and_selects_the_mesh(comfy_server, page):
    pg, node = page, _node_id(_open_template(page), "IA_ObjectFromMesh")
    show_node(pg, node)
    data = _cube_ply(1.0)
    with pg.expect_file_chooser() as chooser:
        pg.mouse.click(*_client_point(pg, node, "upload_mesh_file"))
    chooser.value.set_files({"name": "button_cube.ply", "mimeType": "application/octet-stream", "buffer": data})
    pg.wait_for_function(f"() => window.iaNode({node}).widgets[0].value === 'button_cube.ply'", timeout=30_000)
    assert (comfy_server.input_dir / "button_cube.ply").read_bytes() == data
    assert "button_cube.ply" in pg.evaluate(f"() => window.iaNode({node}).widgets[0].options.values")
    pg.screenshot(path=str(ARTIFACTS / "inputs_1_mesh_uploaded.png"))


@pytest.mark.parametrize("node_type, combo, name, data", [
    ("IA_ObjectFromMesh", "mesh_file", "dropped_cube.ply", _cube_ply(2.0)),
    ("IA_Reconstruct4D", "depth_file", "dropped_depth.npz", _depth_npz()),
])
def test_dropped_file_is_uploaded_and_picked_not_loaded_as_a_workflow(comfy_server, page, node_type, combo, name, data):
    pg = page
    node = _node_id(_open_template(pg), node_type)
    show_node(pg, node)
    nodes_before = pg.evaluate("() => window.iaApp.graph.nodes.length")
    pg.console_errors.clear()
    _drop(pg, node, name, data)
    pg.wait_for_function(f"() => window.iaNode({node}).widgets.find((w) => w.name === '{combo}').value === '{name}'",
                         timeout=30_000)
    assert (comfy_server.input_dir / name).read_bytes() == data
    assert pg.evaluate("() => window.iaApp.graph.nodes.length") == nodes_before  # the workflow stayed
    toasts = pg.evaluate("() => [...document.querySelectorAll('.p-toast-message')].map((t) => t.textContent)")
    assert not [t for t in toasts + pg.console_errors if "Unable to find workflow" in t], (toasts, pg.console_errors)
    # the server lists the file for the combo too (validation re-reads the folder)
    info = comfy_server.get(f"/object_info/{node_type}")[node_type]["input"]["required"][combo]
    assert name in info[1]["options"]
    pg.screenshot(path=str(ARTIFACTS / f"inputs_2_dropped_{combo}.png"))


def test_load_video_shows_source_and_output_before_a_run(comfy_server, page):
    """A Load Video node added from the node library (its defaults) and given the sample video."""
    from insertanywhere.video import probe

    pg = page
    pg.evaluate("() => window.iaApp.graph.clear()")
    node = pg.evaluate("""() => {
        const node = window.LiteGraph.createNode("IA_LoadVideo");
        node.pos = [100, 100];
        window.iaApp.graph.add(node);
        const file = node.widgets.find((w) => w.name === "file");
        file.value = "insertanywhere_sample.mp4";
        file.callback?.(file.value);
        return node.id;
    }""")
    show_node(pg, node)
    source = probe(comfy_server.input_dir / "insertanywhere_sample.mp4")
    info = f"window.iaNode({node}).videoInfo.element"
    pg.wait_for_function(f"() => {info}.dataset.query?.startsWith('file=insertanywhere_sample.mp4')", timeout=30_000)
    shown = pg.evaluate(f"() => {info}.textContent")
    assert f"Source: {source.width}x{source.height}" in shown and f"{source.num_frames} frames" in shown, shown
    # the node's defaults: 81 frames at most, long side 832, 4k+1
    frames = min(source.num_frames, 81)
    assert f"Loads: {(frames - 1) // 4 * 4 + 1} frames" in shown, shown
    pg.wait_for_function(f"() => {info}.getBoundingClientRect().height > 0")
    box = pg.evaluate(f"() => [{info}.scrollHeight, {info}.clientHeight, {info}.scrollWidth, {info}.clientWidth]")
    assert box[0] <= box[1] and box[2] <= box[3], box  # both lines whole
    pg.screenshot(path=str(ARTIFACTS / "inputs_3_load_video_info.png"))
    # a knob change updates the line: stride 2 halves the fps
    pg.evaluate(f"""() => {{
        const w = window.iaNode({node}).widgets.find((w) => w.name === "stride");
        w.value = 2;
        w.callback?.(2);
    }}""")
    half = f"{source.fps / 2:.2f}".rstrip("0").rstrip(".")
    pg.wait_for_function(f"() => {info}.textContent.includes(', {half} fps')", timeout=30_000)
    assert frontend_version(pg)
