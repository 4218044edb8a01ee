"""Drive the real ComfyUI frontend in headless Chromium the way a user does (playwright).

Used by the template and editor browser tests. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from browser import frontend_version, load_app as open_app, open_page as browser_page  # noqa: F401

PACK_MODULE = "comfyui-insertanywhere"  # the template browser's category: the pack's folder name
POLL_S = 0.5  # /history poll period; a run takes seconds to minutes


def open_template(page, name: str) -> None:
    """Templates (sidebar) -> the pack's category under Custom Nodes -> the template's card."""
    page.keyboard.press("Escape")  # nothing of a previous step stays open
    page.locator("button[aria-label=Templates]").first.click()
    page.get_by_text(PACK_MODULE, exact=True).first.click()
    card = page.locator(f"[data-testid='template-workflow-{name}']")
    card.wait_for(state="visible", timeout=30_000)
    card.click()
    page.wait_for_function("(name) => { const g = window.iaApp.graph; return g && g._nodes.length > 0 && "
                           "document.querySelector(`[data-testid='template-workflow-${name}']`) === null; }",
                           arg=name, timeout=60_000)


def graph_widgets(page) -> dict[int, dict]:
    """{node id: {type, names, values}} of the serialised widgets of the loaded graph, as the frontend
    holds them (a widget with serialize === false is not stored in the workflow file)."""
    return page.evaluate("""() => Object.fromEntries(window.iaApp.graph._nodes.map((n) => {
        const ws = (n.widgets || []).filter((w) => w.serialize !== false);
        return [n.id, {type: n.type, names: ws.map((w) => w.name), values: ws.map((w) => w.value)}];
    }))""")


def run_and_wait(page, server, timeout: float = 900, press=None) -> dict:
    """Press Run (or call `press`, e.g. a shortcut), read the prompt id from the UI's own POST /prompt,
    and wait for its /history entry. Raises when the server refused the prompt."""
    is_prompt = lambda r: r.url.endswith("/prompt") and r.request.method == "POST"  # noqa: E731
    with page.expect_response(is_prompt, timeout=60_000) as response_info:
        if press:
            press()
        else:
            page.locator("[data-testid='queue-button'], button:has-text('Run')").first.click()
    response = response_info.value
    body = response.json()
    assert response.status == 200 and not body.get("node_errors"), \
        f"the server refused the prompt: {json.dumps(body)[:3000]}"
    return wait_history(server, body["prompt_id"], timeout)


def wait_history(server, prompt_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = server.get(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        time.sleep(POLL_S)
    raise AssertionError(f"prompt {prompt_id} did not finish in {timeout}s\n{server.log()[-4000:]}")


def execution_error(entry: dict) -> dict | None:
    errors = [m[1] for m in entry["status"].get("messages", []) if m[0] == "execution_error"]
    return errors[0] if errors else None


def queued_prompt(entry: dict) -> dict:
    """The API-format prompt the frontend itself built and queued."""
    return entry["prompt"][2]


def output_files(server, entry: dict, node_id: str) -> list[Path]:
    produced = entry["outputs"].get(str(node_id), {})
    items = produced.get("images", []) + produced.get("videos", []) + produced.get("gifs", [])
    return [server.base / item.get("type", "output") / item.get("subfolder", "") / item["filename"] for item in items]


def save_workflow_json(page, path: Path) -> dict:
    """The loaded graph as the frontend writes a workflow file."""
    workflow = page.evaluate("() => JSON.parse(JSON.stringify(window.iaApp.graph.serialize()))")
    path.write_text(json.dumps(workflow))
    return workflow
