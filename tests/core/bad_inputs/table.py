"""The table behind tests/core/test_bad_inputs.py: one row per hostile or careless input.

A row names the input as a user would meet it, does what that user did (in a fresh temporary
folder), and states the outcome it must get: a regular expression matched against
"error: <message>" (an InsertAnywhereError), "warning: <w1> | <w2>" (the run finished and
warned) or "ok". Any other exception (a Python internal leaking out) fails the row.
Each area of issue #11 keeps its rows in its own `cases_<area>.py` module as `CASES`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from insertanywhere.errors import InsertAnywhereError


@dataclass(frozen=True)
class Case:
    name: str                                         # the input, in the user's words
    run: Callable[[Path], Optional[Iterable[str]]]    # does it in tmp_path; returns warnings (or None)
    expect: str                                       # regex the outcome must match

    def outcome(self, tmp_path: Path) -> str:
        try:
            warnings = self.run(tmp_path)
        except InsertAnywhereError as error:
            return f"error: {error}"
        warnings = list(warnings or [])
        return "warning: " + " | ".join(warnings) if warnings else "ok"

    def check(self, tmp_path: Path) -> str:
        got = self.outcome(tmp_path)
        assert re.search(self.expect, got, re.S), f"{self.name}: expected /{self.expect}/, got {got[:600]!r}"
        return got
