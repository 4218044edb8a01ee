"""Video I/O: streamed selection, fitting to Wan sizes, encode/decode round trip."""

import numpy as np
import pytest

from insertanywhere import video
from insertanywhere.errors import InsertAnywhereError
from insertanywhere.memory import Selection


def _ramp_video(tmp_path, frames=12, height=50, width=70, fps=12.0):
    """Frames whose mean brightness encodes their index (survives lossy coding)."""
    values = np.linspace(20, 230, frames)
    clip = np.stack([np.full((height, width, 3), v, np.uint8) for v in values])
    clip[:, :, : width // 2, 0] = 0  # a left/right edge to check crops keep the centre
    path = video.write_video(tmp_path / "ramp.mp4", clip, fps)
    return path, values


def test_round_trip_keeps_frames_and_fps(tmp_path):
    path, values = _ramp_video(tmp_path)
    frames, fps = video.read_video(path)
    assert frames.shape == (12, 50, 70, 3) and frames.dtype == np.uint8
    assert fps == pytest.approx(12.0)
    means = frames[..., 1].reshape(12, -1).mean(axis=1)
    assert np.abs(means - values).max() < 3


def test_start_stride_cap_select_the_right_frames(tmp_path):
    path, values = _ramp_video(tmp_path)
    frames, fps = video.read_video(path, Selection(start=2, stride=3, frame_cap=3, fit="none"))
    assert frames.shape[0] == 3
    assert fps == pytest.approx(4.0)
    means = frames[..., 1].reshape(3, -1).mean(axis=1)
    assert np.abs(means - values[[2, 5, 8]]).max() < 3


def test_fit_to_wan_sizes_and_4k_plus_1(tmp_path):
    path, _ = _ramp_video(tmp_path, frames=12)
    frames, _ = video.read_video(path, Selection(multiple=16, fit="crop", frame_count="4k+1"))
    assert frames.shape[0] == 9
    assert frames.shape[1] % 16 == 0 and frames.shape[2] % 16 == 0
    resized = video.fit_frames(np.zeros((6, 50, 70, 3), np.uint8), fit="resize", max_side=32)
    assert resized.shape == (6, 16, 32, 3)


@pytest.mark.parametrize("n,expected", [(1, 1), (4, 1), (5, 5), (80, 77), (81, 81), (100, 97)])
def test_snap_frame_count(n, expected):
    assert video.snap_frame_count(n, "4k+1") == expected
    assert video.snap_frame_count(n, "any") == n


def test_crop_keeps_aspect_and_centre():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, 100:] = 255  # right half white
    out = video.fit_frame(frame, (64, 64), "crop")
    assert out.shape == (64, 64, 3)
    assert out[:, :28].max() == 0 and out[:, 36:].min() == 255


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(InsertAnywhereError, match="does not exist"):
        video.read_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(InsertAnywhereError, match="Cannot open"):
        video.read_video(junk)
    path, _ = _ramp_video(tmp_path)
    with pytest.raises(InsertAnywhereError, match="shorter than the start"):
        video.read_video(path, Selection(start=500, fit="none"))
    with pytest.raises(InsertAnywhereError, match="Invalid frame selection stride=0: use stride >= 1"):
        video.read_video(path, Selection(stride=0))
    with pytest.raises(InsertAnywhereError, match="non-empty"):
        video.fit_frames(np.zeros((0, 8, 8, 3), np.uint8))


def test_memory_guard_refuses_huge_decodes(tmp_path, monkeypatch):
    path, _ = _ramp_video(tmp_path)
    monkeypatch.setattr(video, "MAX_DECODED_BYTES", 50 * 70 * 3 * 4)
    with pytest.raises(InsertAnywhereError, match="lower the frame cap"):
        video.read_video(path, Selection(frame_cap=10, fit="none"))
    frames, _ = video.read_video(path, Selection(frame_cap=3, fit="none"))
    assert frames.shape[0] == 3


def test_planned_output_matches_what_read_video_returns(tmp_path):
    """The Load Video node shows this before a run: it must be what decoding then gives."""
    path, _ = _ramp_video(tmp_path, frames=12, height=50, width=70, fps=12.0)
    info = video.probe(path)
    assert (info.width, info.height, info.num_frames) == (70, 50, 12) and info.fps == pytest.approx(12.0)
    knobs = [dict(start=0, frame_cap=81, stride=1, max_side=0, fit="crop", frame_count="4k+1"),
             dict(start=2, frame_cap=3, stride=3, max_side=32, fit="resize", frame_count="any"),
             dict(start=1, frame_cap=100, stride=2, max_side=48, fit="none", frame_count="4k+1")]
    for k in knobs:
        plan = video.planned_output(info, Selection(**k))
        frames, fps = video.read_video(path, Selection(**k))
        assert plan.frames_known and (plan.frames, plan.height, plan.width) == frames.shape[:3], k
        assert plan.fps == pytest.approx(fps)
    assert video.planned_output(info, Selection(start=40)).frames == 0  # starts after the end: nothing to load


def test_planned_output_without_a_frame_count_is_bounded_by_the_cap():
    info = video.VideoInfo(width=1920, height=1080, fps=30.0, num_frames=0)
    plan = video.planned_output(info, Selection(frame_cap=50, stride=2, max_side=832, fit="crop", frame_count="4k+1"))
    assert (plan.frames, plan.frames_known, plan.height, plan.width) == (49, False, 464, 832)
    assert plan.fps == pytest.approx(15.0)
    with pytest.raises(InsertAnywhereError, match="Unknown fit"):
        video.planned_output(info, Selection(fit="zoom"))
