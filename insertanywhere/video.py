"""Video decoding, fitting to model-friendly sizes, and encoding.

Frames are uint8 RGB arrays [F, H, W, 3] in the core; ComfyUI IMAGE tensors
([B, H, W, C] float 0..1) are converted at the node boundary.

Decoding streams with PyAV: frames before `start` and between `stride` steps
are skipped, each kept frame is resized as soon as it is decoded, and the
total is capped, so a long 4K video never sits in memory at full size.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np

from .errors import InsertAnywhereError
from .progress import Progress, report

Source = Union[str, Path, BinaryIO]

FIT_MODES = ("crop", "resize", "none")
FRAME_COUNT_MODES = ("any", "4k+1")
# Refuse to hold more than this many bytes of decoded frames (about 81 frames of 1080p).
MAX_DECODED_BYTES = 2 * 1024**3


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: float
    num_frames: int  # estimate from the container; 0 when unknown


def _open(source: Source):
    import av

    if isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise InsertAnywhereError(f"Video file '{source}' does not exist; check the path or upload it first.")
        source = str(source)
    try:
        container = av.open(source)
    except Exception as exc:  # av raises several error types for unreadable files
        raise InsertAnywhereError(f"Cannot open video '{source}': {exc}. Use an mp4/webm/mov file.") from exc
    if not container.streams.video:
        container.close()
        raise InsertAnywhereError(f"'{source}' has no video stream.")
    return container


def probe(source: Source) -> VideoInfo:
    """Size, frame rate and (estimated) frame count without decoding."""
    container = _open(source)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.base_rate or 16)
        frames = stream.frames or 0
        if not frames and stream.duration and stream.time_base:
            frames = int(round(float(stream.duration * stream.time_base) * fps))
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, fps, int(frames))
    finally:
        container.close()


def snap_size(height: int, width: int, multiple: int = 16, max_side: int = 0) -> tuple[int, int]:
    """Target (H, W): scaled so the longer side is at most `max_side` (0 = keep), then
    rounded down to multiples of `multiple` (at least one multiple)."""
    scale = 1.0
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
    h = max(multiple, int(round(height * scale)) // multiple * multiple)
    w = max(multiple, int(round(width * scale)) // multiple * multiple)
    return h, w


def fit_frame(frame: np.ndarray, size: tuple[int, int], mode: str = "crop") -> np.ndarray:
    """Resize one frame [H, W, C] to `size` (H, W).

    crop:   scale to cover, then centre-crop (keeps the aspect ratio)
    resize: stretch to the exact size
    """
    import cv2

    th, tw = size
    h, w = frame.shape[:2]
    if (h, w) == (th, tw):
        return frame
    if mode == "resize":
        interp = cv2.INTER_AREA if th * tw < h * w else cv2.INTER_LINEAR
        return cv2.resize(frame, (tw, th), interpolation=interp)
    if mode != "crop":
        raise InsertAnywhereError(f"Unknown fit mode '{mode}'; use one of {FIT_MODES}.")
    scale = max(th / h, tw / w)
    rh, rw = max(th, int(round(h * scale))), max(tw, int(round(w * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (rw, rh), interpolation=interp)
    y0, x0 = (rh - th) // 2, (rw - tw) // 2
    return resized[y0:y0 + th, x0:x0 + tw]


def snap_frame_count(n: int, mode: str = "4k+1") -> int:
    """Largest count <= n that the mode allows (4k+1 for Wan: 1, 5, 9, ... 81)."""
    if mode == "any":
        return n
    if mode != "4k+1":
        raise InsertAnywhereError(f"Unknown frame-count mode '{mode}'; use one of {FRAME_COUNT_MODES}.")
    if n < 1:
        raise InsertAnywhereError("No frames to snap: the video is empty after start/stride/cap.")
    return (n - 1) // 4 * 4 + 1


def fit_frames(frames: np.ndarray, *, multiple: int = 16, max_side: int = 0, fit: str = "crop",
               frame_count: str = "any") -> np.ndarray:
    """Fit a frame batch [F, H, W, C] to multiples of `multiple` and the frame-count rule."""
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise InsertAnywhereError(f"Expected a non-empty frame batch [F, H, W, C], got shape {tuple(frames.shape)}.")
    frames = frames[: snap_frame_count(frames.shape[0], frame_count)]
    if fit == "none":
        return frames
    size = snap_size(frames.shape[1], frames.shape[2], multiple, max_side)
    return np.stack([fit_frame(f, size, fit) for f in frames])


def read_video(source: Source, *, start: int = 0, max_frames: Optional[int] = None, stride: int = 1,
               max_side: int = 0, multiple: int = 1, fit: str = "none", frame_count: str = "any",
               progress: Optional[Progress] = None) -> tuple[np.ndarray, float]:
    """Decode frames [start::stride], at most `max_frames`, fitted as they arrive.

    Returns (frames uint8 [F, H, W, 3], fps of the returned frames = source fps / stride).
    `multiple` > 1 with fit "crop"/"resize" snaps H and W to that multiple (16 for Wan);
    `frame_count` "4k+1" trims to a Wan-friendly count.
    """
    if start < 0 or stride < 1 or (max_frames is not None and max_frames < 1):
        raise InsertAnywhereError(
            f"Invalid frame selection start={start}, stride={stride}, max_frames={max_frames}: "
            "start must be >= 0, stride >= 1, and the frame cap >= 1."
        )
    container = _open(source)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.base_rate or 16)
        expected = stream.frames or 0
        wanted = max(0, (expected - start + stride - 1) // stride) if expected else 0
        if max_frames:
            wanted = min(wanted, max_frames) if wanted else max_frames
        size = None
        kept: list[np.ndarray] = []
        for index, frame in enumerate(container.decode(stream)):
            if index < start or (index - start) % stride:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            if size is None:
                size = rgb.shape[:2] if fit == "none" else snap_size(*rgb.shape[:2], multiple, max_side)
                _check_memory(size, wanted or max_frames)
            kept.append(rgb if fit == "none" else fit_frame(rgb, size, fit))
            report(progress, len(kept), wanted or len(kept))
            if max_frames and len(kept) >= max_frames:
                break
    except InsertAnywhereError:
        raise
    except Exception as exc:
        raise InsertAnywhereError(f"Decoding '{source}' failed: {exc}. The file may be truncated.") from exc
    finally:
        container.close()
    if not kept:
        raise InsertAnywhereError(
            f"No frames decoded from '{source}' with start={start}, stride={stride}: "
            "the video is empty or shorter than the start frame."
        )
    frames = np.stack(kept)
    frames = frames[: snap_frame_count(len(frames), frame_count)]
    return frames, fps / stride


def _check_memory(size: tuple[int, int], count: Optional[int]) -> None:
    if not count:
        return
    need = size[0] * size[1] * 3 * count
    if need > MAX_DECODED_BYTES:
        raise InsertAnywhereError(
            f"{count} frames of {size[1]}x{size[0]} would need {need / 1024**3:.1f} GiB; "
            "lower the frame cap, raise the stride, or set a smaller max side."
        )


def write_video(path: Union[str, Path], frames: np.ndarray, fps: float, crf: int = 18,
                preset: str = "superfast") -> Path:
    """Encode uint8 frames [F, H, W, 3] as H.264 mp4 (yuv420p; odd sizes padded by one pixel).

    At crf 18 the x264 preset changes file size far more than quality; superfast halves the
    encode time of veryfast, which matters for previews written on every run."""
    import av

    if frames.ndim != 4 or frames.shape[0] == 0 or frames.shape[-1] != 3:
        raise InsertAnywhereError(f"write_video needs uint8 frames [F, H, W, 3], got {tuple(frames.shape)}.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    ph, pw = h + h % 2, w + w % 2
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for frame in frames:
            if (ph, pw) != (h, w):
                frame = np.pad(frame, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path

