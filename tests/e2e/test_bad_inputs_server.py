"""Tier (c), issue #11: hostile inputs through the real server's /prompt get a clear refusal or
error, leave no side effect, and never crash the server. Rows: tests/e2e/bad_prompts/cases_*.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bad_prompts"))
sys.path.insert(0, str(HERE.parent))  # tests/, for rows

from rows import load_rows  # noqa: E402
from server_table import ServerCase  # noqa: E402

pytestmark = pytest.mark.e2e


CASES: list[ServerCase] = load_rows(HERE / "bad_prompts")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_prompt(case: ServerCase, comfy_server, tmp_path):
    case.check(comfy_server, tmp_path)
    assert comfy_server.process.poll() is None, "the server died"
    comfy_server.get("/system_stats")  # and still answers
