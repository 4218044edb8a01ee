"""The mask stages stay readable: no function in insertanywhere/masks/ longer than MAX_LINES.

Cyclomatic complexity (at most 10 there) is ruff's C901, configured in pyproject.toml.
"""

import ast
from pathlib import Path

MASKS = Path(__file__).resolve().parents[2] / "insertanywhere" / "masks"
MAX_LINES = 60  # from `def` to the last line, docstring included


def long_functions(root: Path, limit: int) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_long_function_in_the_mask_stages():
    assert long_functions(MASKS, MAX_LINES) == []


def test_the_length_check_can_fail(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n")
    assert long_functions(tmp_path, MAX_LINES) == [f"{tmp_path.name}/m.py:5 long ({MAX_LINES + 1} lines)"]
