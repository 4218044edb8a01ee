"""The pack root (the folder ComfyUI loads) never goes ahead of ComfyUI on sys.path, and the pack's
`nodes` package is only ever imported relatively (the top-level name `nodes` is ComfyUI's nodes.py)."""

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]

# Loads the pack root as ComfyUI's load_custom_node does (by path, under the folder's path as its name),
# then runs what comfy_entrypoint runs before it imports the nodes.
LOAD_AS_COMFYUI = """
import importlib.util, json, sys
root = sys.argv[1]
before = list(sys.path)
spec = importlib.util.spec_from_file_location(root, root + "/__init__.py")
pack = importlib.util.module_from_spec(spec)
sys.modules[root] = pack
spec.loader.exec_module(pack)
imported = list(sys.path)
pack.make_core_importable()
core = importlib.util.find_spec("insertanywhere")
print(json.dumps({"before": before, "imported": imported, "after": sys.path, "core": core and core.origin}))
"""


def _load_in_fresh_python(tmp_path) -> dict:
    """A Python without site-packages (-S) or PYTHONPATH (-I): `insertanywhere` is not installed there,
    as when the pack is only copied into custom_nodes."""
    result = subprocess.run([sys.executable, "-I", "-S", "-c", LOAD_AS_COMFYUI, str(PACK_ROOT)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_copied_pack_appends_its_folder_after_everything_else(tmp_path):
    paths = _load_in_fresh_python(tmp_path)
    assert paths["imported"] == paths["before"], "importing the pack root changed sys.path"
    assert paths["after"] == paths["before"] + [str(PACK_ROOT)]
    assert paths["after"][0] != str(PACK_ROOT)
    assert paths["core"] == str(PACK_ROOT / "insertanywhere" / "__init__.py")


def test_an_importable_core_leaves_sys_path_alone():
    spec = importlib.util.spec_from_file_location("insertanywhere_pack_root", PACK_ROOT / "__init__.py")
    pack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pack)
    before = list(sys.path)
    assert importlib.util.find_spec("insertanywhere") is not None  # this test run imports it already
    pack.make_core_importable()
    assert sys.path == before


def _absolute_imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.append(node.module)
    return names


def test_the_pack_never_imports_its_nodes_package_as_top_level_nodes():
    files = [PACK_ROOT / "__init__.py", *(PACK_ROOT / "nodes").rglob("*.py"),
             *(PACK_ROOT / "insertanywhere").rglob("*.py")]
    offenders = [f"{path.relative_to(PACK_ROOT)}: import {name}" for path in files for name in _absolute_imports(path)
                 if name == "nodes" or name.startswith("nodes.")]
    assert offenders == [], "import the pack's nodes relatively (from .nodes / from .x); `nodes` is ComfyUI's module"
