"""Tier (c): every shipped template, opened in the real ComfyUI frontend the way a user opens it
(Templates -> Custom Nodes -> comfyui-insertanywhere -> the card), run with the UI's Run button and
checked in /history; no converter of ours between the workflow file and the server.

Runs against the frontend the ComfyUI checkout pins, and against another frontend build when
COMFYUI_FRONTEND_ROOT names its static folder (e.g. comfyui-frontend-package 1.58.1's `static`).
The insertion templates run on tiny random models in the server's temporary models folder.
Screenshots: test-artifacts/template_<name>_<frontend>.png; timings: test-artifacts/template_runs.json.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
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
from conftest import start_server  # noqa: E402

pytestmark = pytest.mark.e2e

ARTIFACTS = PACK_ROOT / "test-artifacts"
OUTPUT_NODES = ("SaveImage", "SaveVideo", "PreviewImage")
TEMPLATES = [path.stem for path in shipped_workflows()]
FRONTENDS = ["pinned", "env"]  # the checkout's pinned frontend; COMFYUI_FRONTEND_ROOT's build


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
    request.getfixturevalue("comfy_server")  # skips without a ComfyUI checkout
    server = start_server(tmp_path_factory.mktemp("comfy_fe"), Path(root))
    _install_models(server)
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


def _install_models(server) -> None:
    import tiny_models

    tiny_models.install_tiny_models(server.models_dir)


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
    for node_id, (node_type, layout) in _intended(name).items():
        widgets = loaded[str(node_id)]
        assert widgets["type"] == node_type
        assert list(zip(widgets["names"], widgets["values"])) == layout, f"{name} node {node_id} {node_type}"
        assert widgets["values"] == (stored[node_id] or []), f"{name} node {node_id}: stored values moved"
