"""Write workflows/*.json (ComfyUI UI format) from compact specs and the live node schemas.

Widget values are stored by position in UI workflows, so they are laid out from
each node's own schema here instead of by hand:

    COMFYUI_PATH=/path/to/ComfyUI python scripts/build_workflows.py

A spec is a list of (key, node_type, {input: value | (source_key, output_name)}).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # this checkout's package first
from template_layout import Layout, Stage, arrange  # noqa: E402
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
COLUMN_WIDTH, ROW_HEIGHT = 360, 320


def _load_schemas() -> dict:
    comfy = os.environ.get("COMFYUI_PATH")
    if not comfy:
        sys.exit("set COMFYUI_PATH to a ComfyUI checkout")
    sys.path.insert(0, comfy)
    import utils.install_util  # noqa: F401  ComfyUI's utils package first (as its main.py does)
    from comfy.cli_args import args

    args.cpu = True
    import tempfile

    import folder_paths
    import nodes

    folder_paths.set_input_directory(tempfile.mkdtemp())  # the sample inputs land here, not in the checkout

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
    raise ValueError(f"no default for {spec}")


def build(spec: list, schemas: dict) -> dict:
    ids = {key: index + 1 for index, (key, _, _) in enumerate(spec)}
    types = {key: node_type for key, node_type, _ in spec}
    links, nodes_out = [], []
    out_links: dict[tuple[str, int], list[int]] = {}
    for order, (key, node_type, values) in enumerate(spec):
        info = schemas[node_type]
        widgets, inputs = [], []
        for name, input_spec in _inputs(info):
            value = values.get(name)
            if isinstance(value, tuple):  # a link from another node's output
                source, output = value
                slot = schemas[types[source]]["output_name"].index(output)
                link_id = len(links) + 1
                kind = schemas[types[source]]["output"][slot]
                links.append([link_id, ids[source], slot, ids[key], len(inputs), kind])
                out_links.setdefault((source, slot), []).append(link_id)
                entry = {"name": name, "type": kind, "link": link_id}
                if _is_widget(input_spec):
                    entry["widget"] = {"name": name}
                inputs.append(entry)
            elif not _is_widget(input_spec):
                inputs.append({"name": name, "type": input_spec[0], "link": None})
            if _is_widget(input_spec):
                options = input_spec[1] if len(input_spec) > 1 and isinstance(input_spec[1], dict) else {}
                widgets.append(_default(input_spec) if value is None or isinstance(value, tuple) else value)
                if options.get("control_after_generate"):
                    widgets.append("fixed")
                if any(options.get(flag) for flag in UPLOAD_FLAGS):
                    widgets.append("image")
        unknown = set(values) - {name for name, _ in _inputs(info)}
        if unknown:
            raise KeyError(f"{node_type} has no inputs {sorted(unknown)}")
        nodes_out.append({
            "id": ids[key], "type": node_type, "pos": [40 + COLUMN_WIDTH * (order // 2), 60 + ROW_HEIGHT * (order % 2)],
            "size": [320, 240], "flags": {}, "order": order, "mode": 0, "inputs": inputs,
            "outputs": [{"name": name, "type": kind, "links": [], "slot_index": slot}
                        for slot, (name, kind) in enumerate(zip(info["output_name"], info["output"]))],
            "properties": {"Node name for S&R": node_type}, "widgets_values": widgets,
        })
    for node, (key, _, _) in zip(nodes_out, spec):
        for output in node["outputs"]:
            output["links"] = out_links.get((key, output["slot_index"]), [])
    return {"last_node_id": len(spec), "last_link_id": len(links), "nodes": nodes_out, "links": links,
            "groups": [], "config": {}, "extra": {"ds": {"scale": 0.7, "offset": [0, 0]}}, "version": 0.4}


def sample_placement() -> str:
    from insertanywhere.demo import bundled_sample

    return json.dumps(bundled_sample().placement, indent=1)


def masks_workflow() -> list:
    return [
        ("load", "IA_LoadVideo", {"file": "insertanywhere_sample.mp4", "frame_cap": 81, "frame_count": "4k+1"}),
        ("recon", "IA_Reconstruct4D", {"frames": ("load", "frames"), "fps": ("load", "fps"),
                                       "depth_file": "insertanywhere_sample_depth_mono.npz"}),
        ("object", "IA_ObjectFromMesh", {"mesh_file": "insertanywhere_sample_object.ply"}),
        ("place", "IA_PlaceObject", {"scene": ("recon", "scene"), "object": ("object", "object"),
                                     "placement": sample_placement()}),
        ("propagate", "IA_Propagate", {"scene": ("recon", "scene"), "placement": ("place", "placement")}),
        ("reproject", "IA_Reproject", {"scene": ("recon", "scene"), "object": ("object", "object"),
                                       "track": ("propagate", "track")}),
        ("visible_img", "MaskToImage", {"mask": ("reproject", "visible")}),
        ("save_visible", "SaveImage", {"images": ("visible_img", "IMAGE"),
                                       "filename_prefix": "insertanywhere/visible"}),
        ("amodal_img", "MaskToImage", {"mask": ("reproject", "amodal")}),
        ("save_amodal", "SaveImage", {"images": ("amodal_img", "IMAGE"),
                                      "filename_prefix": "insertanywhere/amodal"}),
        ("anchor_video", "CreateVideo", {"images": ("reproject", "anchor_video"), "fps": ("load", "fps")}),
        ("save_anchor", "SaveVideo", {"video": ("anchor_video", "VIDEO"), "filename_prefix": "insertanywhere/anchor"}),
    ]


BLUE, CYAN, GREEN, PURPLE, YELLOW, BROWN, GREY = ("#3f789e", "#335f6b", "#4f7a3a", "#6b3a7a", "#8a7a2a",
                                                   "#7a4a2a", "#555555")
COMMON_TITLES = {"load": "Load Video", "recon": "4D Reconstruct (depth, camera, motion)",
                 "object": "Object to 3D (Mesh)", "place": "Place Object (drag it after the first run)",
                 "propagate": "Propagate (follow the surface)", "reproject": "Reproject (masks with occlusion)"}
START_MASKS = """## Object masks from a video: start here

Press **Run** (Ctrl+Enter) once with the sample files, then make it yours, stage by stage (left to right):

1. **Load**: your video in *Load Video* (frame cap / stride / fit keep it small), and the object as a mesh
   (.glb .obj .ply .stl) in *Object to 3D (Mesh)*.
2. **Reconstruct**: depth, camera and moving things of the video. A depth .npz (`depth_file`) or a
   depth node (`depth_map`) makes it better.
3. **Place**: after the first run, drag the object in the editor to where it stands, wheel to scale,
   sliders for yaw, pitch, roll. No rerun needed to preview.
4. **Track and project**: the object follows its surface; things in front hide it. Nothing to set.
5. **Save**: masks (visible, amodal) and the anchor video go to `output/insertanywhere/`.

No model is needed for this workflow."""


def masks_layout() -> Layout:
    return Layout(
        stages=[Stage("1 Load", BLUE, [["start"], ["load", "object"]]),
                Stage("2 Reconstruct", CYAN, [["recon"]]),
                Stage("3 Place", GREEN, [["place"]]),
                Stage("4 Track and project", PURPLE, [["propagate", "reproject"]]),
                Stage("5 Save", BROWN, [["visible_img", "amodal_img", "anchor_video"],
                                        ["save_visible", "save_amodal", "save_anchor"]])],
        notes={"start": ("Start here", START_MASKS)},
        titles={**COMMON_TITLES, "visible_img": "Visible mask to image", "amodal_img": "Amodal mask to image",
                "anchor_video": "Anchor video", "save_visible": "Save visible masks",
                "save_amodal": "Save amodal masks (hidden parts too)", "save_anchor": "Save anchor video"})


WORKFLOWS = {"insertanywhere_masks": masks_workflow}
LAYOUTS = {"insertanywhere_masks": masks_layout}


def main() -> None:
    from insertion_workflows import LAYOUTS as INSERTION_LAYOUTS
    from insertion_workflows import WORKFLOWS as INSERTION

    schemas = _load_schemas()
    layouts = {**LAYOUTS, **INSERTION_LAYOUTS}
    for name, make in {**WORKFLOWS, **INSERTION}.items():
        path = ROOT / "workflows" / f"{name}.json"
        spec = make()
        path.write_text(json.dumps(arrange(build(spec, schemas), spec, layouts[name](), schemas), indent=1) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
