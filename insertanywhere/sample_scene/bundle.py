"""Files of the sample scenes: the scene bundle (docs/FORMATS.md), its videos, and a hostile mesh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from ..video import write_video


def write_bundle(scene, directory: str | Path) -> Path:
    """Write a SampleScene in the scene bundle layout (docs/FORMATS.md) into `directory`; returns it."""
    from PIL import Image

    out = Path(directory)
    for sub in ("gt/visible", "gt/amodal", "gt/dynamic"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    write_mp4(out / "scene.mp4", scene.frames, scene.fps)
    write_mp4(out / "gt" / "composite.mp4", scene.composite, scene.fps)
    (out / "scene.json").write_text(json.dumps(scene.scene_json(), indent=1))
    np.savez_compressed(out / "depth.npz", depth=scene.depth.astype(np.float16))
    np.savez_compressed(out / "depth_mono.npz", disparity=scene.mono_disparity())
    scene.object_mesh.export(out / "object.ply")
    Image.fromarray(scene.object_ref).save(out / "object_ref.png")
    Image.fromarray(scene.object_ref_mask).save(out / "object_ref_mask.png")
    for name, masks in (("visible", scene.gt_visible), ("amodal", scene.gt_amodal), ("dynamic", scene.dynamic)):
        for t, m in enumerate(masks):
            Image.fromarray((m * 255).astype(np.uint8)).save(out / "gt" / name / f"{t:05d}.png")
    return out


def write_mp4(path: str | Path, frames: np.ndarray, fps: float) -> None:
    """Near-lossless H.264 (yuv420p) via PyAV; MPEG-4 Part 2 via OpenCV when PyAV has no H.264 encoder.

    frames: uint8 [F, H, W, 3] RGB.
    """
    import av

    try:
        av.codec.Codec("libx264", "w")
    except av.codec.codec.UnknownCodecError:
        import cv2

        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps),
                                 (frames.shape[2], frames.shape[1]))
        for f in frames:
            writer.write(np.ascontiguousarray(f[..., ::-1]))
        writer.release()
        return
    write_video(path, frames, fps, crf=10)


def write_triangle_soup(path, faces: int, spread: Optional[float] = None, seed: int = 0) -> Path:
    """A binary STL triangle soup (the hostile mesh of issue #11): `faces` triangles, each with its
    own 3 corners, in a unit cube. spread = std of the corners around each triangle's centre (small:
    little triangles all over); None = every corner anywhere (large overlapping triangles)."""
    rng = np.random.default_rng(seed)
    if spread is None:
        corners = rng.uniform(0, 1, (faces, 3, 3))
    else:
        corners = rng.uniform(0, 1, (faces, 1, 3)) + rng.normal(0, spread, (faces, 3, 3))
    record = np.zeros(faces, [("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attr", "<u2")])
    record["corners"] = corners
    path = Path(path)
    path.write_bytes(b"triangle soup".ljust(80, b" ") + np.uint32(faces).tobytes() + record.tobytes())
    return path
