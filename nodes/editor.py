"""Server side of the interactive placement editor (js/placement_editor.js).

`IA_PlaceObject.execute` calls `remember(workflow_id, node_id, scene, object3d)`; the routes
below then serve that node's frame 0, depth and fast previews to the canvas in
the browser, so moving the object never reruns the graph.

A scene is keyed by the workflow's id (the `id` the frontend gives every graph and sends in the
prompt's extra_pnginfo) and the node id, so a workflow that never ran does not show another
workflow's scene for a node with the same id. Every route takes `?workflow=<id>`.

Routes (all under /insertanywhere/editor, also reachable with the /api prefix):
  GET  /{node_id}/info      JSON: {"available": true, size, K, frame count, object points (canonical)},
                            or {"available": false, "message"} before the node has run (a 200, so the
                            browser logs no error for the normal state of a fresh workflow)
  GET  /{node_id}/frame0    JPEG of frame 0
  POST /{node_id}/surface   body {"anchor": [u, v], "height_px": h} -> JSON: the surface
                            under the anchor (point, normal, basis) and scene points near it
  POST /{node_id}/preview   body {"placement": {...} | "...", "frame": t, "max_side": n}
                            -> JPEG of frame t with the propagated, occluded object
For a node that has not run, the other routes answer 404; the editor then shows the plain JSON. A request body
over MAX_BODY_BYTES answers 413 (also a chunked one, refused as soon as it passes the cap); a body
that is not a JSON object, or is nested deeper than insertanywhere.jsontext allows, answers 400.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict

from .routes import add_routes, run_blocking
from .routes import error as _error

ROUTE_PREFIX = "/insertanywhere/editor"
MAX_ENTRIES = 4            # scenes kept for previews (each holds a whole SceneRecord)
MAX_BODY_BYTES = 64 * 1024
BODY_PIECE_BYTES = 16 * 1024  # read size while enforcing MAX_BODY_BYTES on a body of unknown length
_NODE_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z:_.\-]{0,63}$")
_WORKFLOW_ID = re.compile(r"^[0-9A-Za-z\-]{0,64}$")  # the frontend's graph ids are UUIDs; "" = none

NO_SCENE = ("Node {node} of this workflow has no computed scene yet: queue the workflow once, then the placement "
            "editor shows the scene.")

_lock = threading.Lock()
_entries: "OrderedDict[tuple[str, str], object]" = OrderedDict()


def workflow_id(extra_pnginfo) -> str:
    """The id of the workflow a prompt came from (its extra_pnginfo), or "" when it names none."""
    workflow = extra_pnginfo.get("workflow") if isinstance(extra_pnginfo, dict) else None
    found = workflow.get("id") if isinstance(workflow, dict) else None
    return found if isinstance(found, str) and _WORKFLOW_ID.match(found) else ""


WORKFLOW_INPUT = "insertanywhere_workflow"  # no schema input: only ComfyUI's cache key reads it


def key_place_nodes_by_workflow(json_data):
    """on_prompt handler: a Place Object result belongs to one workflow (its editor scene is kept per
    workflow + node), so the workflow id joins the node's cache key. Another workflow with the same graph
    (a template opened twice) runs the node again and gets its own scene instead of a cached result."""
    if not isinstance(json_data, dict) or not isinstance(json_data.get("prompt"), dict):
        return json_data
    extra = json_data.get("extra_data")
    workflow = workflow_id(extra.get("extra_pnginfo") if isinstance(extra, dict) else None)
    for node in json_data["prompt"].values():
        if isinstance(node, dict) and node.get("class_type") == "IA_PlaceObject" \
                and isinstance(node.get("inputs"), dict):
            node["inputs"][WORKFLOW_INPUT] = workflow
    return json_data


def remember(workflow: str, node_id: str, scene, object3d, upright: bool = True) -> None:
    """Keep `scene` and `object3d` (and the node's upright switch) of Place Object node `node_id` of
    workflow `workflow` for the editor routes.

    Bounded: the least recently used entry is dropped beyond MAX_ENTRIES. Rerunning with
    the same (cached) scene and object keeps the session, so the browser's state stays valid.
    """
    from insertanywhere.masks.editor_preview import EditorSession

    node_id = str(node_id)
    if not _NODE_ID.match(node_id) or not _WORKFLOW_ID.match(workflow):
        logging.warning("InsertAnywhere editor: ignoring node id %r of workflow %r", node_id, workflow)
        return
    key = (workflow, node_id)
    with _lock:
        old = _entries.get(key)
        if old is None or old.scene is not scene or old.object3d is not object3d or old.upright != upright:
            _entries[key] = EditorSession(scene, object3d, upright)  # else keep its caches (same inputs)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)


def forget_all() -> None:
    """Drop every remembered scene (tests, or to free memory)."""
    with _lock:
        _entries.clear()


def _session(key: tuple[str, str]):
    with _lock:
        session = _entries.get(key)
        if session is not None:
            _entries.move_to_end(key)
        return session


def register_routes() -> None:
    """Add the editor routes to ComfyUI's server once; later calls do nothing."""
    add_routes(ROUTE_PREFIX, [("get", ROUTE_PREFIX + "/{node_id}/info", _info),
                              ("get", ROUTE_PREFIX + "/{node_id}/frame0", _frame0),
                              ("post", ROUTE_PREFIX + "/{node_id}/surface", _surface),
                              ("post", ROUTE_PREFIX + "/{node_id}/preview", _preview)])


# ----------------------------------------------------------------------------- handlers


def _key(request):
    """((workflow id, node id), None) or (None, 400 response) from the request."""
    node_id = request.match_info.get("node_id", "")
    workflow = request.query.get("workflow", "")
    if not _NODE_ID.match(node_id):
        return None, _error(400, f"Bad node id {node_id[:80]!r}: expected the node's numeric id.")
    if not _WORKFLOW_ID.match(workflow):
        return None, _error(400, f"Bad workflow id {workflow[:80]!r}: expected the workflow's UUID.")
    return (workflow, node_id), None


def _lookup(request):
    """(session, None) or (None, error response) for the request's workflow and node id."""
    key, err = _key(request)
    if err is not None:
        return None, err
    session = _session(key)
    if session is None:
        return None, _error(404, NO_SCENE.format(node=key[1]))
    return session, None


async def _info(request):
    from aiohttp import web

    key, err = _key(request)
    if err is not None:
        return err
    session = _session(key)
    if session is None:
        return web.json_response({"available": False, "message": NO_SCENE.format(node=key[1])})
    return web.json_response({"available": True, **session.info()})


async def _frame0(request):
    from aiohttp import web

    session, err = _lookup(request)
    if err is None:
        jpeg, err = await run_blocking(session.frame0_jpeg)
    if err is not None:
        return err
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def _json_body(request):
    """(dict, None) or (None, error response): 413 past MAX_BODY_BYTES, 400 for anything but a JSON object.

    The body is read in pieces and refused as soon as it passes the cap, so a chunked body (no
    Content-Length) is never held whole; it is parsed by the core's one JSON parser (depth-limited).
    """
    from insertanywhere.errors import InsertAnywhereError
    from insertanywhere.jsontext import parse_json

    too_large = _error(413, f"Request body is larger than {MAX_BODY_BYTES} bytes.")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None, too_large
    data = bytearray()
    while True:
        piece = await request.content.read(BODY_PIECE_BYTES)
        if not piece:
            break
        data += piece
        if len(data) > MAX_BODY_BYTES:
            return None, too_large
    try:
        body = parse_json(bytes(data), "Request body", '{"placement": {"anchor": [320, 400], "height_px": 120}}',
                          max_chars=MAX_BODY_BYTES)
    except InsertAnywhereError as exc:
        return None, _error(400, str(exc))
    if not isinstance(body, dict):
        return None, _error(400, "Request body must be a JSON object.")
    return body, None


async def _surface(request):
    from aiohttp import web

    session, err = _lookup(request)
    if err is None:
        body, err = await _json_body(request)
    if err is None:
        if "anchor" not in body or "height_px" not in body:
            return _error(400, "The surface request needs 'anchor' [u, v] and 'height_px'.")
        result, err = await run_blocking(session.surface, body["anchor"], body["height_px"])
    if err is not None:
        return err
    return web.json_response(result)


async def _preview(request):
    from aiohttp import web

    session, err = _lookup(request)
    if err is None:
        body, err = await _json_body(request)
    if err is None:
        result, err = await run_blocking(session.preview_request, body)
    if err is not None:
        return err
    jpeg, meta = result
    headers = {"Cache-Control": "no-store", "X-Preview": json.dumps(meta)}
    return web.Response(body=jpeg, content_type="image/jpeg", headers=headers)
