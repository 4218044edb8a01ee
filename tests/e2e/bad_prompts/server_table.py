"""The table behind tests/e2e/test_bad_inputs_server.py: hostile inputs sent to the real server.

A row builds an API-format prompt (as any client may POST it to /prompt, bypassing the UI's
dropdowns), states the outcome it must get — a regular expression matched against
"refused: <validation messages>", "error: <execution message>" or "ok" — and may check that the
server was left without side effects. Each area of issue #11 keeps its rows in its own
`cases_<area>.py` module as `CASES`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional


@dataclass(frozen=True)
class ServerCase:
    name: str
    prompt: Callable[[object, Path], dict]             # (server, tmp_path) -> API prompt
    expect: str                                        # regex on the outcome
    after: Optional[Callable[[object, Path], None]] = None  # asserts no side effect was left

    def outcome(self, server, tmp_path: Path, timeout: float = 300) -> str:
        status, body = server.post("/prompt", {"prompt": self.prompt(server, tmp_path), "client_id": "ia-bad"})
        if status != 200 or body.get("node_errors"):
            return "refused: " + json.dumps(body)
        prompt_id = body["prompt_id"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            entry = server.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                if entry["status"].get("status_str") == "error":
                    errors = [m[1] for m in entry["status"].get("messages", []) if m[0] == "execution_error"]
                    return "error: " + json.dumps(errors)
                return "ok"
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: prompt did not finish in {timeout}s")

    def check(self, server, tmp_path: Path) -> str:
        got = self.outcome(server, tmp_path)
        assert re.search(self.expect, got, re.S), f"{self.name}: expected /{self.expect}/, got {got[:1500]!r}"
        if self.after is not None:
            self.after(server, tmp_path)
        return got
