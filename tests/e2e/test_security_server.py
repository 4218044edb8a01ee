"""Tier (c), issue #11 point 1: the editor routes take no path from a request.

A node id is only a key into the remembered scenes; traversal-looking ids get a 400/404 JSON error and
never a file's contents."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("node_id", ["..%2F..%2F..%2Fetc%2Fpasswd", "..", "%2Fetc%2Fpasswd", "1%00",
                                     "..%5C..%5Cwin.ini"])
@pytest.mark.parametrize("route, method", [("info", "GET"), ("frame0", "GET"), ("surface", "POST"),
                                           ("preview", "POST")])
def test_editor_routes_refuse_path_like_node_ids(comfy_server, node_id, route, method):
    request = urllib.request.Request(f"{comfy_server.url}/insertanywhere/editor/{node_id}/{route}", method=method,
                                     data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    assert status in (400, 404), (status, body[:200])
    assert b"root:" not in body and b"[fonts]" not in body
    if body.startswith(b"{"):
        message = json.loads(body)["error"]
        assert "Bad node id" in message or "has no computed scene yet" in message
