"""Write workflows/*.json (ComfyUI UI format) from compact specs and the node schemas.

Widget values are stored by position in UI workflows, so they are laid out from
each node's own schema here instead of by hand, in the order the ComfyUI frontend
creates the widgets (checked in the real frontend by tests/e2e/test_templates_browser.py):
one widget per widget input in input order, a `control_after_generate` combo right
after the input that asks for one, and the `upload` button of a file combo after
all of them.

    COMFYUI_PATH=/path/to/ComfyUI python scripts/build_workflows.py   # rebuild + refresh the schema snapshot
    python scripts/build_workflows.py --check          # CI, no ComfyUI: the committed files are up to date
    COMFYUI_PATH=... python scripts/build_workflows.py --check --live  # and the snapshot is the live schemas

The schemas the templates use are snapshotted in scripts/node_schemas.json (only what
the layout needs), so `--check` rebuilds without a ComfyUI checkout.

A spec is a list of (key, node_type, {input: value | (source_key, output_name)}).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # this checkout's package first
import insertion_workflows  # noqa: E402
import masks_workflows  # noqa: E402
from template_layout import arrange  # noqa: E402

SNAPSHOT = ROOT / "scripts" / "node_schemas.json"
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_WIDGET, UPLOAD_WIDGET = "control_after_generate", "upload"  # the frontend's names for the extra widgets
CONTROL_VALUE, UPLOAD_VALUE = "fixed", "image"  # "fixed": a template reruns with its seed; "image": the button's value
COLUMN_WIDTH, ROW_HEIGHT = 360, 320


def _live_schemas() -> dict:
    """/object_info-style schemas of every node, from the ComfyUI checkout at COMFYUI_PATH."""
    comfy = os.environ.get("COMFYUI_PATH")
    if not comfy:
        sys.exit("set COMFYUI_PATH to a ComfyUI checkout (or use --check, which reads scripts/node_schemas.json)")
    sys.path.insert(0, comfy)
    import utils.install_util  # noqa: F401  ComfyUI's utils package first (as its main.py does)
    from comfy.cli_args import args

    args.cpu = True
    import tempfile

    # An empty base directory: the sample inputs land there, not in the checkout, and the model combos
    # list no files, so the snapshot does not depend on this machine's models.
    args.base_directory = tempfile.mkdtemp()
    import nodes

    asyncio.run(nodes.init_builtin_extra_nodes())
    asyncio.run(nodes.load_custom_node(str(ROOT)))
    return {name: cls.GET_NODE_INFO_V1() if hasattr(cls, "GET_NODE_INFO_V1") else _v1_info(cls)
            for name, cls in nodes.NODE_CLASS_MAPPINGS.items()}


def _v1_info(cls) -> dict:
    spec = cls.INPUT_TYPES()
    return {"input": spec, "input_order": {k: list(v) for k, v in spec.items()},
            "output": list(cls.RETURN_TYPES),
            "output_name": list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES)}


def _is_widget(spec) -> bool:
    return isinstance(spec[0], list) or spec[0] in WIDGET_TYPES


def _inputs(info: dict):
    order = info.get("input_order") or {k: list(v) for k, v in info["input"].items()}
    for section in ("required", "optional"):
        for name in order.get(section, []):
            yield name, info["input"][section][name]


def _default(spec):
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "default" in options:
        return options["default"]
    if isinstance(spec[0], list):
        return spec[0][0] if spec[0] else ""
    if spec[0] == "COMBO":
        return (options.get("options") or [""])[0]
    return None  # the spec must give a value


def snapshot_schema(info: dict) -> dict:
    """What the layout needs of one node schema: inputs in order (link type, or widget with its default
    and extra widgets) and outputs. Combo option lists are left out: they follow the user's folders."""
    inputs = []
    for name, spec in _inputs(info):
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        entry = {"name": name, "type": "COMBO" if isinstance(spec[0], list) else spec[0]}
        if _is_widget(spec):
            entry["widget"] = True
            entry["default"] = _default(spec)
            entry["control_after_generate"] = bool(options.get("control_after_generate"))
            entry["upload"] = any(options.get(flag) for flag in UPLOAD_FLAGS)
            entry["multiline"] = bool(options.get("multiline"))
        inputs.append(entry)
    return {"inputs": inputs, "outputs": [{"name": name, "type": kind}
                                           for name, kind in zip(info["output_name"], info["output"])]}


def widget_layout(schema: dict, values: dict) -> list[tuple[str, object]]:
    """(widget name, stored value) in the order the frontend keeps `widgets_values` for this node."""
    widgets, uploads = [], []
    for entry in schema["inputs"]:
        if not entry.get("widget"):
            continue
        value = values.get(entry["name"])
        if value is None or isinstance(value, tuple):
            value = entry["default"]
        if value is None:
            raise ValueError(f"input {entry['name']} has no default: give it a value in the spec")
        widgets.append((entry["name"], value))
        if entry["control_after_generate"]:
            widgets.append((CONTROL_WIDGET, CONTROL_VALUE))
        if entry["upload"]:
            uploads.append((UPLOAD_WIDGET, UPLOAD_VALUE))
    return widgets + uploads


def build(spec: list, schemas: dict) -> dict:
    """A UI-format workflow from a spec and snapshot schemas (`snapshot_schema` form)."""
    ids = {key: index + 1 for index, (key, _, _) in enumerate(spec)}
    types = {key: node_type for key, node_type, _ in spec}
    links, nodes_out = [], []
    out_links: dict[tuple[str, int], list[int]] = {}
    for order, (key, node_type, values) in enumerate(spec):
        schema = schemas[node_type]
        unknown = set(values) - {entry["name"] for entry in schema["inputs"]}
        if unknown:
            raise KeyError(f"{node_type} has no inputs {sorted(unknown)}")
        inputs = []
        for entry in schema["inputs"]:
            value = values.get(entry["name"])
            if isinstance(value, tuple):  # a link from another node's output
                source, output = value
                outputs = schemas[types[source]]["outputs"]
                slot = [o["name"] for o in outputs].index(output)
                link_id = len(links) + 1
                kind = outputs[slot]["type"]
                links.append([link_id, ids[source], slot, ids[key], len(inputs), kind])
                out_links.setdefault((source, slot), []).append(link_id)
                slot_entry = {"name": entry["name"], "type": kind, "link": link_id}
                if entry.get("widget"):
                    slot_entry["widget"] = {"name": entry["name"]}
                inputs.append(slot_entry)
            elif not entry.get("widget"):
                inputs.append({"name": entry["name"], "type": entry["type"], "link": None})
        nodes_out.append({
            "id": ids[key], "type": node_type, "pos": [40 + COLUMN_WIDTH * (order // 2), 60 + ROW_HEIGHT * (order % 2)],
            "size": [320, 240], "flags": {}, "order": order, "mode": 0, "inputs": inputs,
            "outputs": [{"name": o["name"], "type": o["type"], "links": [], "slot_index": slot}
                        for slot, o in enumerate(schema["outputs"])],
            "properties": {"Node name for S&R": node_type},
            "widgets_values": [value for _, value in widget_layout(schema, values)],
        })
    for node, (key, _, _) in zip(nodes_out, spec):
        for output in node["outputs"]:
            output["links"] = out_links.get((key, output["slot_index"]), [])
    return {"last_node_id": len(spec), "last_link_id": len(links), "nodes": nodes_out, "links": links,
            "groups": [], "config": {}, "extra": {"ds": {"scale": 0.7, "offset": [0, 0]}}, "version": 0.4}


def all_workflows() -> dict:
    """{template name: spec} of every shipped template."""
    return {name: make() for name, make in {**masks_workflows.WORKFLOWS, **insertion_workflows.WORKFLOWS}.items()}


def all_layouts() -> dict:
    """{template name: Layout} of every shipped template."""
    return {name: make() for name, make in {**masks_workflows.LAYOUTS, **insertion_workflows.LAYOUTS}.items()}


def read_snapshot() -> dict:
    return json.loads(SNAPSHOT.read_text())


def live_snapshot(specs: dict) -> dict:
    """The snapshot form of the live schemas of every node type the templates use."""
    live = _live_schemas()
    used = sorted({node_type for spec in specs.values() for _, node_type, _ in spec})
    return {node_type: snapshot_schema(live[node_type]) for node_type in used}


def render(specs: dict, schemas: dict) -> dict[Path, str]:
    """{path: text} of every file the builder owns."""
    layouts = all_layouts()
    files = {ROOT / "workflows" / f"{name}.json":
             json.dumps(arrange(build(spec, schemas), spec, layouts[name], schemas), indent=1) + "\n"
             for name, spec in specs.items()}
    files[SNAPSHOT] = json.dumps(schemas, indent=1, sort_keys=True) + "\n"
    return files


def check(files: dict[Path, str]) -> list[str]:
    """Unified diffs of every owned file whose committed text differs from a fresh build."""
    problems = []
    for path, text in files.items():
        stored = path.read_text() if path.is_file() else ""
        if stored != text:
            diff = difflib.unified_diff(stored.splitlines(), text.splitlines(), f"committed {path.name}",
                                        f"rebuilt {path.name}", lineterm="", n=1)
            problems.append("\n".join(list(diff)[:40]))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="rebuild in memory and fail if a committed file differs")
    parser.add_argument("--live", action="store_true", help="with --check: build from the live ComfyUI schemas "
                                                            "(COMFYUI_PATH) instead of the snapshot")
    args = parser.parse_args(argv)
    specs = all_workflows()
    schemas = live_snapshot(specs) if args.live or not args.check else read_snapshot()
    files = render(specs, schemas)
    if args.check:
        problems = check(files)
        for problem in problems:
            print(problem)
        if problems:
            print(f"{len(problems)} file(s) out of date: rebuild with "
                  f"COMFYUI_PATH=/path/to/ComfyUI python scripts/build_workflows.py", file=sys.stderr)
            return 1
        print(f"{len(files)} files up to date")
        return 0
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
