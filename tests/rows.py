"""Loading the rows of the bad-input tables (tests/core/bad_inputs, tests/e2e/bad_prompts)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def load_rows(folder: Path) -> list:
    """`CASES` of every cases_*.py in `folder`, each module under a name of its own: the core and the
    server tables both have cases_<area>.py, so importing by bare name would hand one the other's rows."""
    cases = []
    for path in sorted(folder.glob("cases_*.py")):
        spec = importlib.util.spec_from_file_location(f"{folder.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses in the rows look their module up
        spec.loader.exec_module(module)
        cases += module.CASES
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "two rows share a name"
    return cases
