"""Issue #11 point 3 through the real server: a damaged disk-cache entry of 4D Reconstruct (here: cut
short, as a killed save of the old code left it) is recomputed with a logged warning, not a failed prompt.

The entry is the one the first prompt wrote (found by what changed in output/insertanywhere_cache),
so the test does not recompute the node's key; the second prompt changes only cache_max_gb, which
is not part of the key, so ComfyUI re-executes the node and the node reads the damaged entry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from server_table import ServerCase

_ENTRY: dict[str, Path] = {}  # tmp_path -> the damaged entry, for the check after the prompt


def _files(server, tmp_path: Path) -> tuple[str, str, list]:
    from insertanywhere.sample_scene import make_scene, write_mp4

    scene = make_scene("static", num_frames=6, width=96, height=64, seed=11)
    stem = f"ia_cache_{tmp_path.name}"
    write_mp4(server.input_dir / f"{stem}.mp4", scene.frames, scene.fps)
    np.savez(server.input_dir / f"{stem}_depth.npz", depth=scene.depth.astype(np.float32))
    return f"{stem}.mp4", f"{stem}_depth.npz", np.asarray(scene.K).tolist()


def _prompt(video: str, depth: str, K: list, cache_max_gb: float) -> dict:
    return {
        "1": {"class_type": "IA_LoadVideo", "inputs": {"file": video, "start_frame": 0, "frame_cap": 6, "stride": 1,
                                                       "max_side": 0, "fit": "none", "frame_count": "any"}},
        "2": {"class_type": "IA_Reconstruct4D", "inputs": {"frames": ["1", 0], "fps": ["1", 1], "depth_file": depth,
                                                           "fov_deg": 0.0, "intrinsics": json.dumps(K),
                                                           "disk_cache": True, "cache_max_gb": cache_max_gb}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 2]}},
    }


def _entries(server) -> dict[str, int]:
    folder = server.base / "output" / "insertanywhere_cache"
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("scene_*.npz")} if folder.is_dir() else {}


def _damaged_entry_prompt(server, tmp_path: Path) -> dict:
    video, depth, K = _files(server, tmp_path)
    before = _entries(server)
    server.run_prompt(_prompt(video, depth, K, 10.0), timeout=300)
    after = _entries(server)
    written = [name for name, stamp in after.items() if before.get(name) != stamp]
    assert len(written) == 1, f"expected the first prompt to write one cache entry, got {written}"
    entry = server.base / "output" / "insertanywhere_cache" / written[0]
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    _ENTRY[str(tmp_path)] = entry
    return _prompt(video, depth, K, 10.5)


def _entry_repaired_and_warned(server, tmp_path: Path) -> None:
    from insertanywhere.masks.scene import SceneRecord

    entry = _ENTRY.pop(str(tmp_path))
    assert SceneRecord.load(entry).num_frames == 6, "the damaged entry was not replaced"
    log = server.log()
    assert f"disk cache: removed an unusable entry and recomputed the scene: '{entry}'" in log, log[-3000:]


CASES = [
    ServerCase("4D Reconstruct: disk-cache entry cut short by a killed save", _damaged_entry_prompt, r"^ok$",
               after=_entry_repaired_and_warned),
]
