"""One parser for every JSON text a user hands in (placement, intrinsics, editor bodies, prompts).

`json.loads` recurses once per nesting level, so `[[[[...]]]]` a few thousand levels deep raises
RecursionError (a Python internal, and in a server a 500) and a huge text is read whole. Here the
text is size-checked, its nesting depth is measured with a flat scan (no recursion) and only then
parsed; every failure is an InsertAnywhereError that names the input and shows a valid example.

MAX_DEPTH: the deepest JSON the pack reads is 3 levels (a 3x3 K inside {"K": ...}); 32 leaves
room for any future format while staying far below Python's recursion limit (1000).
MAX_CHARS: the largest JSON the pack reads is a placement or an editor body (well under 64 KiB);
1 MiB is ample and keeps a pasted mistake from being parsed at length.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import InsertAnywhereError

MAX_DEPTH = 32
MAX_CHARS = 1 << 20


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """Deepest [ / { nesting of a JSON text (brackets inside strings ignored); stops counting past `limit`."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(text: Any, what: str, example: str, *, max_chars: int = MAX_CHARS, max_depth: int = MAX_DEPTH) -> Any:
    """Parse user-given JSON text; InsertAnywhereError naming `what` (and showing `example`) on any failure."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InsertAnywhereError(f"{what} is not UTF-8 text ({exc.reason}); write it like {example}.") from exc
    if not isinstance(text, str):
        raise InsertAnywhereError(f"{what} must be JSON text, got {type(text).__name__}; write it like {example}.")
    if len(text) > max_chars:
        raise InsertAnywhereError(
            f"{what} is {len(text)} characters long, more than the {max_chars} allowed; write it like {example}.")
    depth = nesting_depth(text, max_depth)
    if depth > max_depth:
        raise InsertAnywhereError(
            f"{what} is nested more than {max_depth} levels deep; write it like {example}.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InsertAnywhereError(
            f"{what} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f"write it like {example}.") from exc
    except RecursionError as exc:  # not expected after the depth scan; never leak it
        raise InsertAnywhereError(f"{what} is nested too deeply; write it like {example}.") from exc
