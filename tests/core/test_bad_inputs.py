"""Issue #11: every hostile or careless input gets its clear error or visible warning.

Rows live in tests/core/bad_inputs/cases_*.py; `python tests/core/test_bad_inputs.py` prints
the table of inputs and outcomes (as pasted in the issue's closing note).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bad_inputs"))
sys.path.insert(0, str(HERE.parent))  # tests/, for rows

from rows import load_rows  # noqa: E402
from table import Case  # noqa: E402

CASES: list[Case] = load_rows(HERE / "bad_inputs")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path):
    case.check(tmp_path)


if __name__ == "__main__":
    print("| input | outcome |\n|---|---|")
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            got = case.outcome(Path(folder)).replace("|", "/").replace("\n", " ")
        print(f"| {case.name} | {got[:300]} |")
