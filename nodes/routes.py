"""Shared plumbing of the pack's HTTP routes (the placement editor's, Load Video's file info) and of its
handlers of queued prompts."""

from __future__ import annotations

import logging


def add_routes(prefix: str, routes: list[tuple[str, str, object]]) -> None:
    """Add (method, path, handler) routes to ComfyUI's server once; later calls with the same prefix do nothing."""
    from server import PromptServer

    server = getattr(PromptServer, "instance", None)
    if server is None:
        logging.warning("InsertAnywhere: no PromptServer instance, routes under %s not added.", prefix)
        return
    table = server.routes
    if any(getattr(r, "path", "").startswith(prefix) for r in table):
        return
    for method, path, handler in routes:
        getattr(table, method)(path)(handler)


def error(status: int, message: str):
    """A JSON error answer {"error": message}."""
    from aiohttp import web

    return web.json_response({"error": message}, status=status)


async def run_blocking(function, *args):
    """Run a blocking call in a worker thread: (result, None) or (None, error response).
    An InsertAnywhereError answers 400 with its message; any other exception 500 (the log has the trace)."""
    import asyncio

    from insertanywhere.errors import InsertAnywhereError

    try:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args), None
    except InsertAnywhereError as exc:
        return None, error(400, str(exc))
    except Exception as exc:  # a bug must not take the server down
        logging.exception("InsertAnywhere: %s failed", getattr(function, "__name__", "request"))
        return None, error(500, f"{type(exc).__name__}: {exc}")


def add_prompt_handlers(*handlers) -> None:
    """Add on_prompt handlers to ComfyUI's server once each (they see every POST /prompt first)."""
    from server import PromptServer

    server = getattr(PromptServer, "instance", None)
    if server is None:
        logging.warning("InsertAnywhere: no PromptServer instance; prompt handlers not added (missing models are "
                        "reported per loader, editor scenes not keyed by workflow).")
        return
    for handler in handlers:
        if handler not in server.on_prompt_handlers:
            server.add_on_prompt_handler(handler)
