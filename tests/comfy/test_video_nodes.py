"""Tier (b): every schema builds; the video nodes run in-process on tiny inputs."""

import numpy as np
import pytest
import torch

from comfyui_env import declared_node_ids


def test_every_declared_node_is_registered_with_a_valid_schema(node_classes):
    assert set(declared_node_ids()) <= set(node_classes)
    for node_id, cls in node_classes.items():
        schema = cls.GET_SCHEMA()
        assert schema.node_id == node_id and schema.category.startswith("InsertAnywhere")
        info = cls.GET_NODE_INFO_V1()
        assert info["description"], f"{node_id} needs a description"


def _tiny_video(comfy_input: str, name="tiny.mp4", frames=10):
    from insertanywhere.video import write_video

    clip = np.stack([np.full((40, 56, 3), 10 + 20 * i, np.uint8) for i in range(frames)])
    write_video(f"{comfy_input}/{name}", clip, 8.0)
    return name


def test_load_video_node_fits_and_keeps_fps(comfy, run_node):
    import folder_paths

    name = _tiny_video(folder_paths.get_input_directory())
    out = run_node("IA_LoadVideo", file=name, start_frame=1, frame_cap=9, stride=1, max_side=0,
                   fit="crop", frame_count="4k+1")
    frames, fps, count = out.result
    assert tuple(frames.shape) == (9, 32, 48, 3) and count == 9
    assert fps == pytest.approx(8.0)
    assert frames.dtype == torch.float32 and 0 <= frames.min() and frames.max() <= 1


def test_video_to_frames_accepts_core_video(comfy, run_node):
    import folder_paths
    from comfy_api.input_impl import VideoFromFile

    name = _tiny_video(folder_paths.get_input_directory(), "tiny2.mp4")
    video = VideoFromFile(f"{folder_paths.get_input_directory()}/{name}")
    frames, fps, count = run_node("IA_VideoToFrames", video=video, start_frame=0, frame_cap=5, stride=2,
                                  max_side=0, fit="resize", frame_count="any").result
    assert count == 5 and fps == pytest.approx(4.0)
    # stride 2 from frame 0 keeps frames 0, 2, 4, ... whose brightness grows by 40 per kept frame
    means = frames.mean(dim=(1, 2, 3)).numpy() * 255
    assert np.allclose(np.diff(means), 40, atol=4)


def test_fit_frames_node(comfy, run_node):
    images = torch.rand(7, 50, 70, 3)
    frames, count = run_node("IA_FitFrames", images=images, max_side=0, fit="crop", frame_count="4k+1").result
    assert tuple(frames.shape) == (5, 48, 64, 3) and count == 5


def test_load_video_and_reconstruct_refuse_what_memory_cannot_hold(comfy, run_node, monkeypatch):
    """Issue #11: over INSERTANYWHERE_MEMORY_BUDGET_GB, Load Video refuses before decoding and 4D
    Reconstruct refuses frames from any loader, both naming the frame cap that fits."""
    import folder_paths

    from insertanywhere import memory
    from insertanywhere.errors import InsertAnywhereError

    name = _tiny_video(folder_paths.get_input_directory(), "tiny3.mp4")
    gib = memory.working_bytes(3.5, 32, 48, with_depth=True, comfy=True) / memory.GIB
    monkeypatch.setenv(memory.ENV_BUDGET, repr(gib))
    with pytest.raises(InsertAnywhereError, match=r"9 frames of 48x32 would need .*frame_cap 3 \(--frame-cap; now 9\)"
                                                   r".*INSERTANYWHERE_MEMORY_BUDGET_GB=<GiB> in the server"):
        run_node("IA_LoadVideo", file=name, start_frame=0, frame_cap=9, stride=1, max_side=0, fit="crop",
                 frame_count="any")
    frames = torch.rand(9, 32, 48, 3)
    monkeypatch.setenv(memory.ENV_BUDGET, repr(memory.working_bytes(3.5, 32, 48) / memory.GIB))
    with pytest.raises(InsertAnywhereError, match=r"The frames given to 4D Reconstruct: 9 frames of 48x32 .*"
                                                   r"frame_cap 3 \(--frame-cap; now 9\)"):
        run_node("IA_Reconstruct4D", frames=frames, fps=16.0, depth_file="none (video only)", fov_deg=0.0,
                 intrinsics="", disk_cache=False)
