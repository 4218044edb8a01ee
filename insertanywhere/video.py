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
from .memory import FIT_MODES, FRAME_COUNT_MODES, SOURCE_FRAMES, Budget, Selection, refuse, snap_size
from .progress import Progress, report

Source = Union[str, Path, BinaryIO]

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


@dataclass
class PlannedOutput:
    """What read_video would return for a selection, from the container's header alone."""

    frames: int         # frames it would keep; when frames_known is False, at most this many (the cap)
    frames_known: bool  # False when the container lists no frame count
    height: int
    width: int
    fps: float


def planned_output(info: VideoInfo, selection: Selection) -> PlannedOutput:
    """The frame count, size and fps read_video gives for this selection (the same rules, no decoding)."""
    sel = selection
    frames = sel.frames(info.num_frames) or 0
    frames = snap_frame_count(frames, sel.frame_count) if frames else 0
    height, width = ((info.height, info.width) if sel.fit == "none"
                     else snap_size(info.height, info.width, sel.multiple, sel.max_side))
    return PlannedOutput(frames, info.num_frames > 0, height, width, info.fps / sel.stride)


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


def fit_transform(source: tuple[int, int], size: tuple[int, int], mode: str = "crop"
                  ) -> tuple[float, float, float, float]:
    """(sx, sy, x0, y0): fit_frame maps pixel (u, v) of a `source` (H, W) frame to
    ((u + 0.5) * sx - 0.5 - x0, (v + 0.5) * sy - 0.5 - y0) of the `size` frame (pixel centres at integers)."""
    (h, w), (th, tw) = source, size
    if (h, w) == (th, tw) or mode == "none":
        return 1.0, 1.0, 0.0, 0.0
    if mode == "resize":
        return tw / w, th / h, 0.0, 0.0
    scale = max(th / h, tw / w)
    rh, rw = max(th, int(round(h * scale))), max(tw, int(round(w * scale)))
    return rw / w, rh / h, float((rw - tw) // 2), float((rh - th) // 2)


def fit_point(uv, source: tuple[int, int], size: tuple[int, int], mode: str = "crop") -> tuple[float, float]:
    """A pixel (u, v) of the source frame, in the fitted frame (see fit_transform)."""
    sx, sy, x0, y0 = fit_transform(source, size, mode)
    return (float(uv[0]) + 0.5) * sx - 0.5 - x0, (float(uv[1]) + 0.5) * sy - 0.5 - y0


def fit_intrinsics(K: np.ndarray, source: tuple[int, int], size: tuple[int, int], mode: str = "crop") -> np.ndarray:
    """K [3, 3] of frames of `source` (H, W) turned into K of the same frames after fit_frame to `size`."""
    K = np.asarray(K, np.float64).copy()
    sx, sy, _, _ = fit_transform(source, size, mode)
    K[0, :2] *= sx
    K[1, 1] *= sy
    K[0, 2], K[1, 2] = fit_point(K[:2, 2], source, size, mode)
    return K


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


def read_video(source: Source, selection: Selection = SOURCE_FRAMES, *, progress: Optional[Progress] = None,
               memory: Optional[Budget] = None) -> tuple[np.ndarray, float]:
    """Decode the frames a memory.Selection picks ([start::stride], at most frame_cap), fitted as they arrive.

    Returns (frames uint8 [F, H, W, 3], fps of the returned frames = source fps / stride).
    The default keeps every frame at the source size. fit "crop"/"resize" snaps H and W to
    multiples of `multiple` (16 for Wan) with the longer side at most max_side; frame_count
    "4k+1" trims to a Wan-friendly count.

    memory: the mask pipeline's budget (insertanywhere.memory.budget). Before decoding, the frames
    this selection keeps (the container's count bounded by the cap) at the fitted size are checked
    against it, and refused with the knob values that would fit; while decoding, the running count
    is checked too, so a container with no or a wrong frame count cannot slip past. Without it only
    the decoded frames are bounded (MAX_DECODED_BYTES).
    A file that ends before the frames its index lists (a truncated download or upload) is an error,
    unless the wanted frames were all decoded before the cut.
    """
    start, stride = selection.start, selection.stride
    try:
        run = _decode(source, selection, progress, memory, threaded=True)
        if run.error is not None:  # frame threading reads ahead: a damaged packet can fail frames before it
            run = _decode(source, selection, progress, memory, threaded=False)
    except InsertAnywhereError:
        raise
    except Exception as exc:
        raise InsertAnywhereError(f"Decoding '{source}' failed: {exc}. The file may be truncated.") from exc
    kept, expected, wanted, decoded, fps = run.kept, run.expected, run.wanted, run.decoded, run.fps
    name = _name(source)
    if run.error is not None and not (expected and decoded < expected):
        raise InsertAnywhereError(
            f"Decoding '{name}' failed after {decoded} frames ({run.error}): the file is truncated or damaged "
            f"(an interrupted download or upload?). Copy or upload the whole file again, or set the frame cap "
            f"to {len(kept)} or less to use the frames before the damage." if kept else
            f"Decoding '{name}' failed: {run.error}. The file is truncated or damaged; copy or upload it again."
        ) from run.error
    if not run.stopped and expected and decoded < expected - max(1, expected // 50) and len(kept) < wanted:
        raise InsertAnywhereError(
            f"'{name}' ends after {decoded} of the {expected} frames its index lists: the file is "
            f"truncated or damaged (an interrupted download or upload?), so only {len(kept)} of the "
            f"{wanted} wanted frames could be decoded. Copy or upload the whole file again, or set the "
            f"frame cap to {len(kept)} or less to use the frames before the cut."
        )
    if not kept:
        raise InsertAnywhereError(
            f"No frames decoded from '{source}' with start={start}, stride={stride}: "
            "the video is empty or shorter than the start frame."
        )
    frames = np.empty((len(kept),) + kept[0].shape, np.uint8)
    for i in range(len(kept)):  # one frame at a time: the list and a stacked copy never coexist
        frames[i] = kept[i]
        kept[i] = None
    frames = frames[: snap_frame_count(len(frames), selection.frame_count)]
    return frames, fps / stride


@dataclass
class _Decoded:
    kept: list
    expected: int        # frames the container's index lists (0 = none)
    wanted: int          # frames the selection should keep by that index (0 = unknown)
    decoded: int = 0     # frames the decoder gave, kept or not
    stopped: bool = False  # stopped at the frame cap (not at the end of the file)
    fps: float = 16.0
    error: Optional[Exception] = None


def _decode(source: Source, sel: Selection, progress: Optional[Progress], memory: Optional[Budget],
            threaded: bool) -> _Decoded:
    """Decode the selection; a decoder error ends the run and is returned with what came before it."""
    container = _open(source)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO" if threaded else "NONE"
        expected = stream.frames or 0  # the container's index: a hint for planning, never trusted
        run = _Decoded([], expected, sel.frames(expected) or 0,
                       fps=float(stream.average_rate or stream.base_rate or 16))
        size = _planned_size(stream, sel.fit, sel.multiple, sel.max_side)
        fit_frames = _check_plan(memory, sel, run.wanted, size, stream, expected, source)
        kept = run.kept
        index = -1
        for frame in _frames_of(container, stream, run):
            index += 1
            run.decoded = index + 1
            if index < sel.start or (index - sel.start) % sel.stride:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            if size is None or (sel.fit == "none" and rgb.shape[:2] != size):
                size = rgb.shape[:2] if sel.fit == "none" else snap_size(*rgb.shape[:2], sel.multiple, sel.max_side)
                fit_frames = _check_plan(memory, sel, run.wanted, size, stream, expected, source)
            if memory is None and len(kept) == 0:
                _check_memory(size, run.wanted or sel.frame_cap)
            kept.append(rgb if sel.fit == "none" else fit_frame(rgb, size, sel.fit))
            if fit_frames is not None and len(kept) > fit_frames:
                raise refuse(memory, sel, len(kept), size, _source_size(stream, rgb), expected,
                 f"'{_name(source)}' has more frames than its container lists "
                             f"({expected or 'no count'})")
            report(progress, len(kept), run.wanted or len(kept))
            if sel.frame_cap and len(kept) >= sel.frame_cap:
                run.stopped = True
                break
        return run
    finally:
        container.close()


def _frames_of(container, stream, run: _Decoded):
    """The stream's frames; a packet the decoder rejects (cut short, damaged) is skipped and its
    error kept in run.error, so the frames around it still come out."""
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except Exception as exc:  # av raises several error types for damaged data
            run.error = run.error or exc
            continue
        yield from frames


def _name(source: Source) -> str:
    return str(source) if isinstance(source, (str, Path)) else "the video"


def _source_size(stream, rgb: Optional[np.ndarray] = None) -> tuple[int, int]:
    if rgb is not None:
        return rgb.shape[:2]
    return stream.codec_context.height, stream.codec_context.width


def _planned_size(stream, fit: str, multiple: int, max_side: int) -> Optional[tuple[int, int]]:
    """The fitted (H, W) from the stream's header, or None when it does not say."""
    h, w = _source_size(stream)
    if not h or not w:
        return None
    return (h, w) if fit == "none" else snap_size(h, w, multiple, max_side)


def _check_plan(memory: Optional[Budget], selection: Selection, wanted: int, size, stream, expected: int,
                source: Source) -> Optional[int]:
    """Refuse a planned selection over the budget; return how many frames of `size` fit (None = any)."""
    if memory is None or size is None:
        return None
    if wanted and not memory.fits(wanted, *size):
        what = f"'{_name(source)}'" + ("" if expected else " (no frame count in its container: up to the frame cap)")
        raise refuse(memory, selection, wanted, size, _source_size(stream), expected, what)
    return memory.frames_that_fit(*size)


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

