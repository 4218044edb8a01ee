"""Issue #11: every hostile or careless input gets its clear error or visible warning.

Rows live in tests/core/bad_inputs/cases_*.py; `python tests/core/test_bad_inputs.py` prints
the table of inputs and outcomes (as pasted in the issue's closing note).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bad_inputs"))

from table import Case  # noqa: E402


def _load(path: Path):
    """A rows module by its path, under a name of its own: the core and server tables both have
    cases_<area>.py, so importing by bare name would hand one tier the other's rows."""
    spec = importlib.util.spec_from_file_location(f"bad_inputs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the rows look their module up
    spec.loader.exec_module(module)
    return module


def all_cases() -> list[Case]:
    cases = []
    for module in sorted((HERE / "bad_inputs").glob("cases_*.py")):
        cases += _load(module).CASES
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "two rows share a name"
    return cases


CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path):
    case.check(tmp_path)


if __name__ == "__main__":
    print("| input | outcome |\n|---|---|")
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            got = case.outcome(Path(folder)).replace("|", "/").replace("\n", " ")
        print(f"| {case.name} | {got[:300]} |")
