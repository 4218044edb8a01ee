"""Spec and layout of the masks workflow (video -> reconstruct -> place -> propagate -> reproject -> save);
scripts/build_workflows.py writes it with the others, and scripts/insertion_workflows.py continues it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from template_layout import BLUE, BROWN, CYAN, GREEN, PURPLE, Layout, Stage  # noqa: E402


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
