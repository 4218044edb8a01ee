"""Convert a UI-format workflow (what the frontend saves) to the API format POST /prompt takes.

Widget values are stored by position; this maps them onto input names with the
server's /object_info. The frontend keeps a `control_after_generate` value right after its
input and the upload buttons' values after all widgets (ignored here). Only for tests that edit
a prompt before queueing it; the templates are run by the real frontend, and
tests/e2e/test_templates_browser.py checks this against the frontend's own graphToPrompt().
"""

from __future__ import annotations

NON_EXECUTING = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def _is_widget(spec) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _input_specs(info: dict) -> list[tuple[str, list]]:
    order = info.get("input_order") or {k: list(v) for k, v in info["input"].items()}
    specs = []
    for section in ("required", "optional"):
        for name in order.get(section, []):
            specs.append((name, info["input"][section][name]))
    return specs


def to_api(workflow: dict, object_info: dict) -> dict:
    links = {link[0]: link for link in workflow.get("links", [])}  # id, from, from_slot, to, to_slot, type
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in NON_EXECUTING or node.get("mode", 0) in (2, 4):  # muted / bypassed
            continue
        if node["type"] not in object_info:
            raise KeyError(f"node type {node['type']} is not in /object_info")
        info = object_info[node["type"]]
        values = list(node.get("widgets_values") or [])
        if isinstance(node.get("widgets_values"), dict):
            raise ValueError(f"node {node['id']}: dict widgets_values are not supported")
        inputs = {}
        for name, spec in _input_specs(info):
            if not _is_widget(spec):
                continue
            if not values:
                break
            inputs[name] = values.pop(0)
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if options.get("control_after_generate") and values:
                values.pop(0)
        for slot in node.get("inputs", []):
            link_id = slot.get("link")
            if link_id is None:
                continue
            _, origin, origin_slot, *_ = links[link_id]
            inputs[slot["name"]] = [str(origin), origin_slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
