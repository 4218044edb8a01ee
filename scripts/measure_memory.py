"""Peak memory of `insertanywhere masks` against frames x pixels (issue #11, point 2).

    python scripts/measure_memory.py --out /tmp/mem 320x192x33 320x192x129 640x384x65 ...

Each WxHxF point makes a video from a 33-frame sample scene (played back and forth, resized),
runs the whole `insertanywhere masks` command in a fresh process and reads its peak resident set
size (VmHWM of that process, written at its exit). It prints a markdown table with the model's estimate
(insertanywhere.memory.estimate_peak_bytes) beside each measurement, and a least-squares fit
peak = a + b * frames * pixels over the points, to re-measure the model's constants.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_input(base: Path, width: int, height: int, frames: int, folder: Path) -> tuple[Path, Path]:
    import cv2

    from insertanywhere.video import read_video, write_video

    src, fps = read_video(base / "scene.mp4")
    order = []
    while len(order) < frames:  # 0..32, 31..0, 1..32, ...: continuous camera motion
        order += list(range(len(src))) if not order else list(range(len(src) - 2, -1, -1)) + list(range(1, len(src)))
    out = np.stack([cv2.resize(src[i], (width, height), interpolation=cv2.INTER_AREA) for i in order[:frames]])
    video = write_video(folder / f"v_{width}x{height}x{frames}.mp4", out, fps)
    placement = json.loads((base / "scene.json").read_text())["placement"]
    sx, sy = width / src.shape[2], height / src.shape[1]
    placement["anchor"] = [placement["anchor"][0] * sx, placement["anchor"][1] * sy]
    placement["height_px"] *= sy
    place = folder / f"p_{width}x{height}.json"
    place.write_text(json.dumps(placement))
    with np.load(base / "depth_mono.npz") as data:  # the same frames of the simulated depth network
        disparity = data["disparity"].astype(np.float32)
    maps = np.stack([cv2.resize(disparity[i], (width, height), interpolation=cv2.INTER_LINEAR) for i in order[:frames]])
    np.savez(folder / f"d_{width}x{height}x{frames}.npz", disparity=maps.astype(np.float16))
    return video, place


# The CLI run under a wrapper that writes its own VmHWM (peak resident memory of the process since
# its exec) at exit: ru_maxrss of a child would also count the parent's memory copied at fork time.
WRAPPER = (
    "import atexit, os, runpy, sys\n"
    "def _hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            open(os.environ['IA_PEAK_FILE'], 'w').write(str(int(line.split()[1]) * 1024))\n"
    "atexit.register(_hwm)\n"
    "sys.argv = ['insertanywhere'] + sys.argv[1:]\n"
    "runpy.run_module('insertanywhere.cli', run_name='__main__')\n"
)


def peak_of(args: list[str], root: Path = ROOT) -> tuple[int, float, int]:
    """(peak RSS bytes of `insertanywhere ARGS` run from `root`, seconds, exit status)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        peak_file = Path(folder) / "peak"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=root,
                              env={**os.environ, "PYTHONPATH": str(root), "IA_PEAK_FILE": str(peak_file)})
        seconds = time.perf_counter() - started
        peak = int(peak_file.read_text()) if peak_file.exists() else 0
    return peak, seconds, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("points", nargs="+", help="WxHxF, e.g. 320x192x129")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ia_memory"))
    parser.add_argument("--extra", default="--frame-cap 100000",
                        help="extra CLI arguments for masks (default: no frame cap)")
    parser.add_argument("--depth", action="store_true",
                        help="give the simulated depth network's disparity (--depth d.npz), as the node workflows do")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="run the CLI of this source tree (e.g. an older commit, for a before/after table)")
    args = parser.parse_args()
    from insertanywhere.memory import estimate_peak_bytes

    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / "base"
    if not (base / "scene.mp4").exists():
        subprocess.run([sys.executable, "-m", "insertanywhere.cli", "sample-scene", "--out", str(base)],
                       check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    rows = []
    print(f"depth input: {'disparity' if args.depth else 'none'}")
    print("| frames x size | frame-pixels (M) | peak RSS (MiB) | model (MiB) | seconds | exit |")
    print("|---|---|---|---|---|---|")
    for point in args.points:
        w, h, f = (int(x) for x in point.split("x"))
        video, place = make_input(base, w, h, f, args.out)
        cmd = ["masks", "--video", str(video),
               "--object-mesh", str(base / "object.ply"), "--placement", str(place),
               "--out", str(args.out / f"o_{point}"), *args.extra.split()]
        if args.depth:
            cmd += ["--depth", str(args.out / f"d_{point}.npz")]
        peak, seconds, code = peak_of(cmd, args.root)
        model = estimate_peak_bytes(f, h, w, with_depth=args.depth)
        rows.append((f * h * w, peak))
        print(f"| {f} x {w}x{h} | {f * h * w / 1e6:.1f} | {peak / 2**20:.0f} | {model / 2**20:.0f} | "
              f"{seconds:.1f} | {code} |", flush=True)
    if len(rows) >= 2:
        x, y = np.array(rows, float).T
        b, a = np.polyfit(x, y, 1)
        print(f"\nfit: peak = {a / 2**20:.0f} MiB + {b:.1f} bytes x frames x pixels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
