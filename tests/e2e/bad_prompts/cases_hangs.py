"""Issue #11 point 4 (no hangs) on the real server: a 100k-triangle soup goes through
Object to 3D (Mesh) -> Place Object -> Propagate -> Reproject on the sample scene and finishes
(simplified on load) instead of holding the queue for many minutes."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path


from insertanywhere.sample_scene import write_triangle_soup
from server_table import ServerCase

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from workflow_api import to_api  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
SOUP = "ia_hangs_soup_100k.stl"


@dataclass(frozen=True)
class TimedCase(ServerCase):
    """A row that must finish within `timeout` seconds (the hang it guards against took > 300 s)."""

    timeout: float = 300

    def check(self, server, tmp_path: Path) -> str:
        import re

        got = self.outcome(server, tmp_path, timeout=self.timeout)
        assert re.search(self.expect, got, re.S), f"{self.name}: expected /{self.expect}/, got {got[:1500]!r}"
        return got


def _soup_placed(server, tmp_path: Path) -> dict:
    """The shipped masks workflow up to Reproject (a preview of its anchor video as the output),
    with the soup as the object."""
    write_triangle_soup(server.input_dir / SOUP, 100_000)  # large overlapping triangles, 5 MB
    workflow = json.loads((ROOT / "workflows" / "insertanywhere_masks.json").read_text())
    prompt = to_api(workflow, server.get("/object_info"))
    by_type = {node["class_type"]: key for key, node in prompt.items()}
    keep = {by_type[t] for t in ("IA_LoadVideo", "IA_Reconstruct4D", "IA_ObjectFromMesh", "IA_PlaceObject",
                                 "IA_Propagate", "IA_Reproject")}
    prompt = {key: node for key, node in prompt.items() if key in keep}
    prompt[by_type["IA_ObjectFromMesh"]]["inputs"]["mesh_file"] = SOUP
    prompt["ia_hangs_preview"] = {"class_type": "PreviewImage",
                                  "inputs": {"images": [by_type["IA_Reproject"], 2]}}
    return prompt


CASES = [
    TimedCase("Object mesh: a 5 MB STL soup of 100k large overlapping triangles, placed and reprojected",
              _soup_placed, r"^ok$", timeout=240),
]
