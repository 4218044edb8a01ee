"""Drive the real ComfyUI frontend in headless Chromium the way a user does (playwright).

Used by the template and editor browser tests. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PACK_MODULE = "comfyui-insertanywhere"  # the template browser's category: the pack's folder name
POLL_S = 0.5  # /history poll period; a run takes seconds to minutes


@contextmanager
def browser_page(server, viewport=(1500, 1000)):
    """A fresh Chromium profile on the server's UI, ready (app set up, node definitions registered)."""
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (Python) to drive Chromium")
    server.post("/settings/Comfy.TutorialCompleted", True)  # no first-run template browser over the canvas
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
        page = context.pages[0] if context.pages else context.new_page()
        page.errors = []  # uncaught exceptions, with their stacks
        page.on("pageerror", lambda exc: page.errors.append(f"{exc}\n{exc.stack}"))
        open_app(page, server.url)
        try:
            yield page
        finally:
            context.close()


def open_app(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("() => window.comfyAPI?.app?.app?.vueAppReady && "
                           "window.LiteGraph?.registered_node_types?.IA_LoadVideo && "
                           "window.LiteGraph.registered_node_types.SaveImage", timeout=180_000)
    page.evaluate("() => { window.iaApp = window.comfyAPI.app.app; }")


def frontend_version(page) -> str:
    return page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")


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
    assert response.status == 200 and not body.get("node_errors"), f"the server refused the prompt: {json.dumps(body)[:3000]}"
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
