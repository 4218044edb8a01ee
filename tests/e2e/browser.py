"""Headless Chromium on the real ComfyUI page, for the browser tests of tier (c).

`open_page(server)` yields a Playwright page with the app loaded and, on it, `errors` (uncaught
exceptions), `console_errors` (console error lines) and `failed` ("<status> <url>" of every answer
>= 400), so a test can assert the page stayed clean."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from comfyui_env import PACK_ROOT

# screenshots; those of a frontend given with INSERTANYWHERE_FRONTEND_ROOT go to a sub-folder
ARTIFACTS = PACK_ROOT / "test-artifacts" / ("front-end-root" if os.environ.get("INSERTANYWHERE_FRONTEND_ROOT") else "")
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
JS_HELPERS = """
window.iaApp = window.comfyAPI.app.app;
window.iaNode = (id) => window.iaApp.graph.getNodeById(id);
window.iaEditor = (id) => {
  const widget = window.iaNode(id)?.widgets?.find((w) => w.name === "placement_editor");
  return widget?.editor ?? null;
};
"""


@contextlib.contextmanager
def open_page(server, viewport=(1500, 1100)):
    if not Path(CHROMIUM).is_file():
        pytest.skip("Chromium is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (Python) to drive Chromium")
    server.post("/settings/Comfy.TutorialCompleted", True)  # no first-run template browser over the canvas
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as pw:
        # A persistent context on a fresh temporary profile is Playwright's --user-data-dir.
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
        page = context.pages[0] if context.pages else context.new_page()
        page.errors, page.console_errors, page.failed = [], [], []
        page.on("pageerror", lambda exc: page.errors.append(f"{exc}\n{exc.stack}"))
        page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
        page.on("response", lambda r: r.status >= 400 and page.failed.append(f"{r.status} {r.url}"))
        load_app(page, server.url)
        try:
            yield page
        finally:
            context.close()


def load_app(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    # Ready when the app finished its setup and the node definitions are registered.
    page.wait_for_function("() => window.comfyAPI?.app?.app?.vueAppReady && "
                           "window.LiteGraph?.registered_node_types?.IA_PlaceObject && "
                           "window.LiteGraph.registered_node_types.IA_LoadVideo && "
                           "window.LiteGraph.registered_node_types.SaveImage", timeout=120_000)
    page.evaluate(JS_HELPERS)


def frontend_version(page) -> str:
    return page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__")


def show_node(page, node: int, left: int = 100, top: int = 110) -> None:
    """Zoom 1 with the node's top left corner `left`, `top` px into the canvas (the defaults clear newer
    frontends' menus)."""
    page.evaluate(f"""() => {{
        const app = window.iaApp, node = window.iaNode({node});
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [-node.pos[0] + {left}, -node.pos[1] + {top}];
        app.canvas.setDirty(true, true);
    }}""")
