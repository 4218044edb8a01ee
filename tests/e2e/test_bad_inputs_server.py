"""Tier (c), issue #11: hostile inputs through the real server's /prompt get a clear refusal or
error, leave no side effect, and never crash the server. Rows: tests/e2e/bad_prompts/cases_*.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bad_prompts"))

from server_table import ServerCase  # noqa: E402

pytestmark = pytest.mark.e2e


def _load(path: Path):
    """A rows module by its path, under a name of its own: the core and server tables both have
    cases_<area>.py, so importing by bare name would hand one tier the other's rows."""
    spec = importlib.util.spec_from_file_location(f"bad_prompts_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the rows look their module up
    spec.loader.exec_module(module)
    return module


def all_cases() -> list[ServerCase]:
    cases = []
    for module in sorted((HERE / "bad_prompts").glob("cases_*.py")):
        cases += _load(module).CASES
    return cases


CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_prompt(case: ServerCase, comfy_server, tmp_path):
    case.check(comfy_server, tmp_path)
    assert comfy_server.process.poll() is None, "the server died"
    comfy_server.get("/system_stats")  # and still answers
