"""Issue #11, point 2 (memory) and the missing video of point 6, through the real server's /prompt.

Load Video (IA_LoadVideo) feeds a core PreviewImage, so the prompt has an output. ComfyUI's own
min / max checks must stay on for the node's number inputs, a missing file is reported once, and a
request far larger than the server's memory is refused with the knob message before decoding.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from server_table import ServerCase

SMALL = "ia_memory_small.mp4"
HUGE = "ia_memory_4k_600.mp4"   # 600 frames of 4096x2160 (black, about 100 kB)


def _video(server, name: str, width: int, height: int, frames: int) -> str:
    import av

    path = Path(server.input_dir) / name
    if path.is_file():
        return name
    partial = path.with_suffix(".part.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(16))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "40"}
        frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")  # converted once, encoded `frames` times
        for index in range(frames):
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)
    return name


def _load(file: str, **overrides) -> dict:
    inputs = {"file": file, "start_frame": 0, "frame_cap": 81, "stride": 1, "max_side": 832, "fit": "crop",
              "frame_count": "4k+1", **overrides}
    return {"1": {"class_type": "IA_LoadVideo", "inputs": inputs},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def negative_max_side(server, tmp: Path) -> dict:
    return _load(_video(server, SMALL, 64, 48, 9), max_side=-16)


def missing_file(server, tmp: Path) -> dict:
    return _load("ia_no_such_video.mp4")


def huge_request(server, tmp: Path) -> dict:
    return _load(_video(server, HUGE, 4096, 2160, 600), frame_cap=10_000, max_side=0)


CASES = [
    ServerCase("Load Video: max_side -16 (ComfyUI's own min check)", negative_max_side,
               r'^refused: .*"type": "value_smaller_than_min", "message": "Value -16 smaller than min of 0", '
               r'"details": "max_side"'),
    ServerCase("Load Video: missing video file (reported once, not once per widget)", missing_file,
               r"^refused: (?!(.*custom_validation_failed){2})"
               r".*\"node_errors\": \{\"1\": \{\"errors\": \[\{\"type\": \"custom_validation_failed\", "
               r"\"message\": \"Custom validation failed for node\", \"details\": \"file - Video file "
               r"'ia_no_such_video.mp4' is not a file in ComfyUI's input folder[^\]]*\]"),
    ServerCase("Load Video: 600 frames of 4096x2160, frame cap 10000, max side 0 (far over the server's memory)",
               huge_request,
               r"^error: .*ia_memory_4k_600\.mp4': 600 frames of 4096x2160 would need about \d+\.\d GiB for the "
               r"mask pipeline .* Any one of these fits: frame_cap \d+ .*max_side \d+ .*"
               r"INSERTANYWHERE_MEMORY_BUDGET_GB=<GiB> in the server's environment"),
]
