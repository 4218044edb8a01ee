"""Tier (c): the real ComfyUI server with this pack — load and list every shipped workflow
(tests/e2e/test_templates_browser.py opens and runs them in the real frontend)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfyui_env import PACK_DIR_NAME, declared_node_ids, shipped_workflows  # noqa: E402

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
