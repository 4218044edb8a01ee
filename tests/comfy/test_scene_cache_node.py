"""Tier (b): 4D Reconstruct's disk cache (issue #11, point 3) — the key the node uses, a damaged entry
recomputed with a warning, fps in the key, the size cap, and the widget order kept for saved workflows."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch


@pytest.fixture
def counted(monkeypatch):
    """The real reconstruction, counting its runs."""
    import insertanywhere.masks.reconstruct as module

    real, calls = module.reconstruct, []

    def reconstruct(frames, **kwargs):
        calls.append(len(frames))
        return real(frames, **kwargs)

    monkeypatch.setattr(module, "reconstruct", reconstruct)
    return calls


def test_reconstruct_node_disk_cache(comfy, run_node, counted):
    import folder_paths

    from insertanywhere.masks.scene import SceneRecord
    from insertanywhere.masks.scene_cache import SceneCache
    from insertanywhere.sample_scene import make_scene

    s = make_scene("static", num_frames=6, width=96, height=64, seed=5)
    frames = torch.from_numpy(s.frames).float() / 255
    K = np.asarray(s.K, np.float64)
    folder = os.path.join(folder_paths.get_output_directory(), "insertanywhere_cache")

    def run(fps=16.0, **extra):
        return run_node("IA_Reconstruct4D", frames=frames, fps=fps, depth_file="none (video only)", fov_deg=0.0,
                        intrinsics=json.dumps(K.tolist()), disk_cache=True, **extra).result[0]

    earlier = {entry[0] for entry in SceneCache(folder, None).entries()}  # other tests' scenes share the folder
    first = run()  # an API prompt from before cache_max_gb existed still runs
    assert counted == [6]
    cache = SceneCache(folder, None)
    path = cache.path(cache.key(s.frames, fps=16.0, depth_input={}, K=K, fov_deg=None))
    assert path.is_file(), "the node keys its entries as SceneCache.key does"

    data = bytearray(path.read_bytes())  # one bit flipped in the middle of the entry
    data[len(data) // 2] ^= 0x08
    path.write_bytes(bytes(data))
    again = run(cache_max_gb=10.0)
    assert counted == [6, 6]
    assert any(w.startswith("disk cache: removed an unusable entry") for w in again.warnings)
    assert np.array_equal(again.camera_from_world, first.camera_from_world)
    assert SceneRecord.load(path).num_frames == 6  # repaired
    hit = run()
    assert counted == [6, 6] and not any("disk cache" in w for w in hit.warnings)

    other_fps = run(fps=24.0)  # fps is in the key: not served the 16 fps scene
    assert counted == [6, 6, 6] and other_fps.fps == 24.0

    # the cap: a 150 MB entry from older code, least recently used, goes when the node writes
    legacy = os.path.join(folder, "scene_0123456789abcdef0123.npz")
    with open(legacy, "wb") as f:
        f.truncate(150 * 10 ** 6)  # sparse: no real disk use
    old = time.time() - 3600
    os.utime(legacy, (old, old))
    run(fps=30.0, cache_max_gb=0.1)
    assert counted == [6, 6, 6, 6]
    assert not os.path.exists(legacy)
    assert len([e for e in cache.entries() if e[0] not in earlier]) == 3 and cache.total_bytes() < 0.1 * 10 ** 9


def test_cache_widget_is_appended_after_the_existing_ones(node_classes):
    info = node_classes["IA_Reconstruct4D"].GET_NODE_INFO_V1()
    order = info["input_order"]
    assert order["required"] == ["frames", "fps", "depth_file", "fov_deg", "intrinsics", "disk_cache"]
    assert order["optional"] == ["depth_map", "cache_max_gb"]
    spec = info["input"]["optional"]["cache_max_gb"]
    assert spec[0] == "FLOAT" and spec[1]["default"] == 10.0 and spec[1]["min"] > 0
