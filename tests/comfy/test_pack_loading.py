"""ComfyUI loads the pack from custom_nodes without the pack shadowing ComfyUI's own `nodes` module.

Runs in a fresh ComfyUI process (no PYTHONPATH, the editable install of the core hidden) so that the
pack is loaded as a user's copy in custom_nodes is: the core found only through the pack's folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from comfyui_env import COMFYUI_PATH, PACK_DIR_NAME, PACK_ROOT, declared_node_ids, needs_comfyui

LOAD = """
import asyncio, importlib.machinery, json, sys
comfy, pack, tmp = sys.argv[1:4]
# a pack copied into custom_nodes, not pip-installed: hide an editable install of the core
sys.meta_path = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path.insert(0, comfy)  # as `python main.py` in the ComfyUI folder
import utils.install_util  # noqa: F401  ComfyUI's utils package first, as its main.py does
from comfy.cli_args import args
args.cpu = True
import folder_paths
for sub in ("output", "temp", "input"):
    getattr(folder_paths, f"set_{sub}_directory")(f"{tmp}/{sub}")
import nodes
loaded = asyncio.run(nodes.load_custom_node(pack))
core = sys.modules.get("insertanywhere")
print(json.dumps({
    "loaded": loaded,
    "nodes_file": sys.modules["nodes"].__file__,
    "node_types": sorted(sys.modules["nodes"].NODE_CLASS_MAPPINGS),
    "fresh_import_of_nodes": importlib.machinery.PathFinder.find_spec("nodes").origin,
    "top_level_nodes_submodules": sorted(m for m in sys.modules if m.startswith("nodes.")),
    "core_file": core and core.__file__,
    "sys_path": sys.path,
}))
"""


@needs_comfyui
def test_comfyui_keeps_its_nodes_module_and_registers_the_pack(tmp_path):
    custom_nodes = tmp_path / "custom_nodes"
    custom_nodes.mkdir()
    pack = custom_nodes / PACK_DIR_NAME
    pack.symlink_to(PACK_ROOT, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", LOAD, COMFYUI_PATH, str(pack), str(tmp_path)], cwd=COMFYUI_PATH,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    state = json.loads(result.stdout.strip().splitlines()[-1])

    comfy_nodes = str(Path(COMFYUI_PATH, "nodes.py").resolve())
    assert state["loaded"], result.stderr[-4000:]
    assert str(Path(state["nodes_file"]).resolve()) == comfy_nodes
    assert "KSampler" in state["node_types"]
    assert set(declared_node_ids()) <= set(state["node_types"])
    # what the next `import nodes` of anyone (ComfyUI, another pack) would find on sys.path
    assert str(Path(state["fresh_import_of_nodes"]).resolve()) == comfy_nodes
    assert state["top_level_nodes_submodules"] == []
    assert Path(state["core_file"]).resolve() == PACK_ROOT / "insertanywhere" / "__init__.py"
    paths = [str(Path(p or ".").resolve()) for p in state["sys_path"]]
    assert paths.index(str(PACK_ROOT)) > paths.index(str(Path(COMFYUI_PATH).resolve()))
