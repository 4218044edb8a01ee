"""Issue #11 points 5 and 6 through the real server's /prompt: the intrinsics widget takes the CLI's
{"K": ...} form, anything else that is not a K is one clear error, and a deeply nested placement is
a clear error that leaves the server running. Inputs: the pack's sample scene (written into the
input folder when the pack loads), all 33 frames (the depth file covers exactly those)."""

from __future__ import annotations

import json
import math

from server_table import ServerCase

SAMPLE = "insertanywhere_sample"
WIDTH, HEIGHT = 320, 192  # insertanywhere.demo DEMO_WIDTH, DEMO_HEIGHT
FOCAL = 0.5 * WIDTH / math.tan(math.radians(30))
K = [[FOCAL, 0, (WIDTH - 1) / 2], [0, FOCAL, (HEIGHT - 1) / 2], [0, 0, 1]]


def _reconstruct(intrinsics: str, placement: str | None = None) -> dict:
    prompt = {
        "1": {"class_type": "IA_LoadVideo", "inputs": {
            "file": f"{SAMPLE}.mp4", "start_frame": 0, "frame_cap": 33, "stride": 1, "max_side": 0, "fit": "none",
            "frame_count": "any"}},
        "2": {"class_type": "IA_Reconstruct4D", "inputs": {
            "frames": ["1", 0], "fps": ["1", 1], "depth_file": f"{SAMPLE}_depth_mono.npz", "fov_deg": 0.0,
            "intrinsics": intrinsics, "disk_cache": False}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 2]}},
    }
    if placement is not None:
        prompt["4"] = {"class_type": "IA_ObjectFromMesh", "inputs": {"mesh_file": f"{SAMPLE}_object.ply"}}
        prompt["5"] = {"class_type": "IA_PlaceObject", "inputs": {
            "scene": ["2", 0], "object": ["4", 0], "placement": placement, "stand_upright": "auto"}}
        prompt["6"] = {"class_type": "PreviewImage", "inputs": {"images": ["5", 1]}}
    return prompt


CASES = [
    ServerCase("intrinsics widget in the CLI's {\"K\": [[fx, 0, cx], ...]} form",
               lambda server, tmp: _reconstruct(json.dumps({"K": K})), r"^ok$"),
    ServerCase("intrinsics widget 'fx=500' (not JSON)",
               lambda server, tmp: _reconstruct("fx=500"),
               r"^error: .*The intrinsics widget is not valid JSON \(Expecting value at line 1 column 1\); write it "
               r"like \{\\\"K\\\""),
    ServerCase("intrinsics widget with fx = 1e12",
               lambda server, tmp: _reconstruct(json.dumps([[1e12, 0, 159.5], [0, 1e12, 95.5], [0, 0, 1]])),
               r"^error: .*field of view of 1\.83e-08 degrees .*1 to 170 degrees"),
    ServerCase("placement widget nested 100000 levels deep",
               lambda server, tmp: _reconstruct(json.dumps({"K": K}), '{"anchor": ' + "[" * 100000),
               r"^error: .*The placement is nested more than 32 levels deep"),
]
