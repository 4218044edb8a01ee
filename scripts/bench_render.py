"""Rendering cost of heavy meshes, as ratios to a floor measured in the same run.

    python scripts/bench_render.py [--frames 5]

Floor: one frame of a 1280-triangle sphere, 300 px tall in an 832x480 frame. Rows: 100k-triangle
STL soups (every triangle with its own corners; small triangles all over, or large overlapping
ones) loaded as `insertanywhere masks --object-mesh` loads them (simplified to the face / layer
budget), then rendered at the same size. Columns: load time / floor, render time per frame /
floor, pixel tests per frame (the rasteriser's work) and faces kept. Timings are medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from insertanywhere.masks.geometry import make_pose  # noqa: E402
from insertanywhere.masks.object3d import load_mesh, object_from_trimesh  # noqa: E402
from insertanywhere.masks.reproject import render_object  # noqa: E402
from insertanywhere.sample_scene import write_triangle_soup  # noqa: E402

SIZE = (480, 832)
K = np.array([[600.0, 0, 416], [0, 600, 240], [0, 0, 1]])
POSE = make_pose(np.diag([1.0, -1.0, -1.0]), [0.0, 0.5, 2.0])  # unit height at z = 2: 300 px tall


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5, help="renders per row (median taken)")
    args = parser.parse_args(argv)
    import trimesh

    sphere = object_from_trimesh(trimesh.creation.icosphere(subdivisions=3))
    floor, render = _median_time(lambda: render_object(sphere, POSE, K, SIZE), max(args.frames, 5))
    print(f"floor: {len(sphere.faces)}-face sphere, {render.mask.sum()} px, {floor * 1000:.1f} ms per frame\n")
    print("| mesh | faces kept | load / floor | render per frame / floor | pixel tests per frame |")
    print("|---|---|---|---|---|")
    print(f"| sphere (floor) | {len(sphere.faces)} | - | 1.0 | {render.pixel_tests} |")
    with tempfile.TemporaryDirectory() as folder:
        for name, spread in (("100k soup, small triangles (std 0.01)", 0.01),
                             ("100k soup, small triangles (std 0.03)", 0.03),
                             ("100k soup, large overlapping triangles", None)):
            path = write_triangle_soup(Path(folder) / "soup.stl", 100_000, spread)
            load, obj = _median_time(lambda path=path: load_mesh(path), 1)
            per_frame, render = _median_time(lambda obj=obj: render_object(obj, POSE, K, SIZE), args.frames)
            print(f"| {name} | {len(obj.faces)} | {load / floor:.0f} | {per_frame / floor:.1f} | "
                  f"{render.pixel_tests} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
