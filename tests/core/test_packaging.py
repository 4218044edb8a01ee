"""Packaging contracts: requirements in sync, root package importable without ComfyUI, node ids prefixed."""

import asyncio
import importlib.util
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfyui_env import PACK_ROOT, declared_node_ids  # noqa: E402

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def _requirements():
    lines = (PACK_ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_requirements_match_project_dependencies():
    project = tomllib.loads((PACK_ROOT / "pyproject.toml").read_text())["project"]
    assert _requirements() == project["dependencies"]
    assert not any("+cu" in r or "cuda" in r.lower() for r in _requirements())


def test_registry_metadata_and_console_script():
    data = tomllib.loads((PACK_ROOT / "pyproject.toml").read_text())
    comfy = data["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon", "requires-comfyui"} <= comfy.keys()
    assert data["project"]["scripts"]["insertanywhere"] == "insertanywhere.cli:main"


def test_metadata_points_at_files_that_exist():
    """The registry icon, the license and README pictures are files in the repository, not dangling links."""
    data = tomllib.loads((PACK_ROOT / "pyproject.toml").read_text())
    repo = data["project"]["urls"]["Repository"].replace("https://github.com/", "")
    icon = data["tool"]["comfy"]["Icon"]
    prefix = f"https://raw.githubusercontent.com/{repo}/main/"
    assert icon.startswith(prefix) and (PACK_ROOT / icon[len(prefix):]).is_file(), icon
    license_text = (PACK_ROOT / "LICENSE").read_text()
    assert data["project"]["license"]["text"] == "Apache-2.0"
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    for glob in (g for globs in data["tool"].get("setuptools", {}).get("package-data", {}).values() for g in globs):
        assert list(PACK_ROOT.glob(f"insertanywhere/{glob}")), f"package-data {glob} matches nothing"
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (PACK_ROOT / "README.md").read_text())
    assert pictures and all((PACK_ROOT / picture).is_file() for picture in pictures), pictures


def test_root_package_imports_without_comfyui():
    spec = importlib.util.spec_from_file_location("ia_pack_root", PACK_ROOT / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    spec.loader.exec_module(module)
    assert module.WEB_DIRECTORY == "./js"
    assert asyncio.iscoroutinefunction(module.comfy_entrypoint)
    assert not hasattr(module, "NODE_CLASS_MAPPINGS")
    assert not {m for m in set(sys.modules) - before if m.startswith(("comfy", "folder_paths", "server"))}


def test_core_never_imports_comfyui():
    banned = ("import comfy", "from comfy", "import folder_paths", "from folder_paths", "import server",
              "from server")
    for path in (PACK_ROOT / "insertanywhere").rglob("*.py"):
        text = path.read_text()
        assert not any(line.strip().startswith(banned) for line in text.splitlines()), path


def test_node_ids_are_prefixed_and_unique():
    ids = declared_node_ids()
    assert ids and len(ids) == len(set(ids))
    assert all(i.startswith("IA_") for i in ids)
