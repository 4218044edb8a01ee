"""Lay out a built workflow for reading: one coloured group per stage, left to right, nodes stacked in
columns inside their group with room for what they show after a run, markdown notes, titles in words,
model download metadata, and a start view at a readable zoom.

`arrange(workflow, spec, layout, schemas)` changes only positions, sizes, titles, properties, groups and
notes of what `build_workflows.build` wrote; widget values and links stay as they are.

Sizes follow LiteGraph's own computeSize (measured in frontend 1.27.10): a node's body is
20 px per input/output row + 24 px per widget + 8 px when it has widgets + 6 px, a multiline text
widget adds 54 px, the title bar (30 px) sits above `pos`. Nodes that show a picture or a video after a
run get PREVIEW_HEIGHT more, so a run does not make them grow into their neighbours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from insertanywhere.model_catalog import source

SLOT_HEIGHT, WIDGET_HEIGHT, WIDGETS_MARGIN, BODY_MARGIN, MULTILINE_EXTRA = 20, 24, 8, 6, 54  # px, LiteGraph
TITLE_HEIGHT = 30             # px, LiteGraph's node title bar above `pos`
GROUP_TITLE_HEIGHT = 34       # px, a group's title bar at font size 24
NODE_WIDTH = 340              # px, wider than every node's computed minimum (<= 236 px) but Load Video's
NODE_GAP, COLUMN_GAP, STAGE_GAP, PAD = 30, 30, 70, 20  # px between nodes / columns / groups, inside a group
PREVIEW_HEIGHT = 320          # px, the largest growth measured after a run (Object to 3D: +212, Load Image: +224)
PREVIEW_TYPES = {"IA_LoadVideo", "IA_Reconstruct4D", "IA_ObjectFromImage", "IA_ObjectFromMesh", "IA_Propagate",
                 "IA_Reproject", "LoadImage", "SaveImage", "SaveVideo", "PreviewImage"}
FIXED_SIZES = {"IA_LoadVideo": (440, 0),            # its video preview needs 424 px
               "IA_PlaceObject": (620, 1350)}       # the placement editor with a scene: 1288 px measured
# the stages' group colours, one a pipeline stage (the same stage the same colour in every template)
BLUE, CYAN, GREEN, PURPLE, YELLOW, BROWN, GREY = ("#3f789e", "#335f6b", "#4f7a3a", "#6b3a7a", "#8a7a2a",
                                                   "#7a4a2a", "#555555")
NOTE_COLOR, NOTE_BGCOLOR = "#432", "#653"           # the yellow of core templates' notes
NOTE_LINE_HEIGHT, NOTE_CHAR_WIDTH, NOTE_MARGIN = 14, 5.5, 60  # px, markdown body text at zoom 1 (1.27.10)
VIEW_HEIGHT = 900             # px of canvas shown at zoom 1 in a 1080p window; the start zoom fits a group
MIN_SCALE = 0.7               # LiteGraph hides all text below 8 px / 14 px = 0.57; 0.7 keeps it readable
NOTE_WIDTH = 420              # px, a readable line length for the notes


@dataclass
class Stage:
    title: str                        # "1 Load", shown as the group's title
    color: str                        # group colour (LiteGraph's palette)
    columns: list[list[str]]          # spec keys (and note keys) top to bottom, columns left to right


@dataclass
class Layout:
    stages: list[Stage]
    notes: dict[str, tuple[str, str]] = field(default_factory=dict)  # note key -> (title, markdown)
    titles: dict[str, str] = field(default_factory=dict)  # spec key -> node title


def _multiline_count(schema: dict) -> int:
    """Multiline text widgets of a node (schema in build_workflows.snapshot_schema form)."""
    return sum(bool(entry.get("multiline")) for entry in schema["inputs"])


def node_size(node: dict, schema: dict) -> tuple[int, int]:
    """Width and body height a node needs, with room for its preview after a run."""
    width, fixed_height = FIXED_SIZES.get(node["type"], (NODE_WIDTH, 0))
    rows = max(len(node["inputs"]), len(node["outputs"]), 1)
    widgets = len(node["widgets_values"])
    height = (SLOT_HEIGHT * rows + (WIDGET_HEIGHT * widgets + WIDGETS_MARGIN if widgets else 0) + BODY_MARGIN
              + MULTILINE_EXTRA * _multiline_count(schema) + (PREVIEW_HEIGHT if node["type"] in PREVIEW_TYPES else 0))
    return width, max(height, fixed_height)


def note_size(text: str, width: int = NOTE_WIDTH) -> tuple[int, int]:
    per_line = int((width - 30) / NOTE_CHAR_WIDTH)
    lines = sum(max(1, math.ceil(len(line) / per_line)) for line in text.splitlines())
    return width, NOTE_MARGIN + NOTE_LINE_HEIGHT * lines


def _note_node(node_id: int, title: str, text: str) -> dict:
    return {"id": node_id, "type": "MarkdownNote", "title": title, "pos": [0, 0], "size": list(note_size(text)),
            "flags": {},
            "order": node_id - 1, "mode": 0, "inputs": [], "outputs": [], "properties": {},
            "widgets_values": [text], "color": NOTE_COLOR, "bgcolor": NOTE_BGCOLOR}


def model_metadata(node: dict) -> list[dict]:
    """`properties.models` for the frontend's Missing Models dialog: every widget value that names a known
    downloadable file. Whole folders (diffusers pipelines) are left out: the frontend checks single files,
    so a folder would be reported missing even when it is installed."""
    out = []
    for value in node["widgets_values"]:
        for folder in ("sam2", "diffusion_models", "text_encoders", "vae", "loras", "diffusers"):
            known = source(folder, value) if isinstance(value, str) else None
            if known is not None and not known.is_folder:
                out.append({"name": known.name, "url": known.url, "directory": known.folder})
    return out


def _place_column(nodes: list[dict], x: int, top: int) -> tuple[int, int]:
    """Stack `nodes` from `top`; returns the column's width and bottom."""
    y, width = top, max(node["size"][0] for node in nodes)
    for node in nodes:
        node["pos"] = [x, y + TITLE_HEIGHT]
        y += TITLE_HEIGHT + node["size"][1] + NODE_GAP
    return width, y - NODE_GAP


def arrange(workflow: dict, spec: list, layout: Layout, schemas: dict) -> dict:
    """Positions, sizes, groups, notes, titles and model metadata for `workflow` (built from `spec`)."""
    by_key = {key: node for (key, _, _), node in zip(spec, workflow["nodes"])}
    for key, node in by_key.items():
        node["size"] = list(node_size(node, schemas[node["type"]]))
        if key in layout.titles:
            node["title"] = layout.titles[key]
        models = model_metadata(node)
        if models:
            node["properties"]["models"] = models
    next_id = workflow["last_node_id"] + 1
    for key, (title, text) in layout.notes.items():
        by_key[key] = _note_node(next_id, title, text)
        workflow["nodes"].append(by_key[key])
        next_id += 1
    workflow["last_node_id"] = next_id - 1
    placed = [key for stage in layout.stages for column in stage.columns for key in column]
    if sorted(placed) != sorted(by_key):
        raise ValueError(f"layout places {sorted(set(placed) ^ set(by_key))} wrongly (each key exactly once)")

    groups, x, top = [], 0, GROUP_TITLE_HEIGHT + PAD
    for number, stage in enumerate(layout.stages, start=1):
        column_x, bottom = x + PAD, top
        for column in stage.columns:
            width, column_bottom = _place_column([by_key[key] for key in column], column_x, top)
            column_x += width + COLUMN_GAP
            bottom = max(bottom, column_bottom)
        groups.append({"id": number, "title": stage.title, "bounding": [x, 0, column_x - COLUMN_GAP + PAD - x,
                                                                         bottom + PAD],
                       "color": stage.color, "font_size": 24, "flags": {}})
        x = column_x - COLUMN_GAP + PAD + STAGE_GAP
    height = max(group["bounding"][3] for group in groups)
    for group in groups:  # one row of equally tall groups
        group["bounding"][3] = height
    workflow["groups"] = groups
    scale = round(max(MIN_SCALE, min(1.0, VIEW_HEIGHT / (height + 2 * PAD))), 2)
    workflow["extra"] = {**workflow.get("extra", {}), "ds": {"scale": scale, "offset": [PAD, PAD]}}
    return workflow


def boxes(workflow: dict) -> dict[int, tuple[float, float, float, float]]:
    """Each node's box (x0, y0, x1, y1) with its title bar, as the canvas draws it."""
    return {node["id"]: (node["pos"][0], node["pos"][1] - TITLE_HEIGHT, node["pos"][0] + node["size"][0],
                         node["pos"][1] + node["size"][1]) for node in workflow["nodes"]}
