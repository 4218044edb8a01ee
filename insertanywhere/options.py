"""Checks shared by the option objects (ReconstructOptions, MaskOptions, VACEOptions, ...).

Each raises InsertAnywhereError naming the owner, the option, its value and its valid range:
  ReconstructOptions.seed = -1 is not valid: use an integer >= 0.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

from .errors import InsertAnywhereError


def bad(owner: str, name: str, value, valid: str) -> InsertAnywhereError:
    return InsertAnywhereError(f"{owner}.{name} = {value!r} is not valid: use {valid}.")


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_integer(owner: str, name: str, value, low: int, high: Optional[int] = None, extra: str = "") -> None:
    if not is_int(value) or value < low or (high is not None and value > high):
        span = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise bad(owner, name, value, f"{span} {extra}".strip())


def check_number(owner: str, name: str, value, positive: bool, high: Optional[float] = None) -> None:
    """A finite real >= 0 (> 0 when positive), at most `high` when given."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0) or (high is not None and value > high):
        low = "> 0" if positive else ">= 0"
        raise bad(owner, name, value, f"a finite number {low}" + (f" and <= {high}" if high is not None else ""))


def check_flag(owner: str, name: str, value, allow_none: bool = False) -> None:
    if not (isinstance(value, bool) or (allow_none and value is None)):
        raise bad(owner, name, value, "True, False or None" if allow_none else "True or False")


def check_choice(owner: str, name: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise bad(owner, name, value, f"one of {', '.join(map(repr, choices))}")
