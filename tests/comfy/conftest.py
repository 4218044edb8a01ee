"""Tier (b): this pack loaded in-process by a real ComfyUI checkout (COMFYUI_PATH).

ComfyUI's own top-level `nodes` module would clash with this pack's `nodes`
package, so the pack is loaded the way ComfyUI loads it (by path, under its own
module name) and its node classes are taken from ComfyUI's registry.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfyui_env import COMFYUI_PATH, EXECUTED, PACK_ROOT  # noqa: E402


def _load_comfy(tmp: Path):
    sys.path.insert(0, COMFYUI_PATH)
    for name in [m for m in sys.modules if m == "nodes" or m.startswith("nodes.")]:
        module = sys.modules[name]
        if not str(getattr(module, "__file__", "")).startswith(COMFYUI_PATH):
            del sys.modules[name]  # this pack's `nodes` package, imported by a core test
    import utils.install_util  # noqa: F401  ComfyUI's utils package, before comfy/ lands on sys.path (as main.py)
    from comfy.cli_args import args

    args.cpu = True
    import folder_paths

    for sub in ("output", "temp", "input"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    folder_paths.set_output_directory(str(tmp / "output"))
    folder_paths.set_temp_directory(str(tmp / "temp"))
    folder_paths.set_input_directory(str(tmp / "input"))
    import nodes as comfy_nodes

    loaded = asyncio.run(comfy_nodes.load_custom_node(str(PACK_ROOT)))
    assert loaded, "ComfyUI failed to load the pack (see the log above)"
    return comfy_nodes


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    if not (COMFYUI_PATH and Path(COMFYUI_PATH, "main.py").is_file()):
        pytest.skip("set COMFYUI_PATH to a ComfyUI checkout to run the in-process node tier")
    return _load_comfy(tmp_path_factory.mktemp("comfy_inproc"))


@pytest.fixture(scope="session")
def node_classes(comfy):
    return {k: v for k, v in comfy.NODE_CLASS_MAPPINGS.items() if k.startswith("IA_")}


@pytest.fixture(scope="session")
def run_node(node_classes):
    """Execute a node the way the executor does (class clone + hidden inputs); returns the NodeOutput."""

    def run(node_id: str, hidden: dict | None = None, **inputs):
        from comfy_api.latest import io

        original = node_classes[node_id]
        cls = original.PREPARE_CLASS_CLONE(hidden or {io.Hidden.unique_id: "1"})
        if "validate_inputs" in original.__dict__:
            # as the executor does: only the inputs the method names (all of them with **kwargs)
            spec = inspect.getfullargspec(original.validate_inputs)
            named = inputs if spec.varkw else {k: v for k, v in inputs.items() if k in spec.args}
            verdict = cls.validate_inputs(**named)
            assert verdict is True, verdict
        output = cls.EXECUTE_NORMALIZED(**inputs)
        EXECUTED.add(node_id)
        return output

    return run


_COMFY_TESTS = Path(__file__).resolve().parent
_deselected: list = []


def pytest_deselected(items):
    _deselected.extend(item for item in items if _COMFY_TESTS in Path(item.path).parents)


def _whole_tier_ran(session) -> bool:
    """Every test module of this tier was collected and nothing of it deselected (-k, -m)."""
    ran = {Path(item.path) for item in session.items}
    return not _deselected and set(_COMFY_TESTS.glob("test_*.py")) <= ran


def pytest_sessionfinish(session, exitstatus):
    """Tier (b) closes by checking that its tests executed every declared node. Only a whole, passing
    tier can tell (a single file covers its own nodes), so the check runs at session end, in any order."""
    if exitstatus != 0 or not EXECUTED or not _whole_tier_ran(session):
        return
    from comfyui_env import declared_node_ids

    missing = sorted(set(declared_node_ids()) - EXECUTED)
    if missing:
        session.config.get_terminal_writer().line(f"tier (b): no test executed {missing}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
