"""Template thumbnails (workflows/<name>.jpg, shown on the template browser's cards) from the
card screenshots (card_<name>_<frontend>.png: the first stages at a readable zoom) the browser test
takes after running each template from the UI:

    COMFYUI_PATH=/path/to/ComfyUI python -m pytest tests/e2e/test_templates_browser.py -k runs_from_the_ui
    python scripts/make_thumbnails.py [frontend version, default: the newest screenshots]

Only templates whose run completed (test-artifacts/template_runs_<version>.json says "ran") get one.
A screenshot is cropped to the card's 4:3 shape around its centre and stored as a JPEG under MAX_BYTES.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
SIZE = (480, 360)  # px; cards show about 300 px wide, twice that is sharp on a HiDPI screen
MAX_BYTES = 60_000  # keep the repository small


def thumbnail(screenshot: Path) -> bytes:
    image = Image.open(screenshot).convert("RGB")
    width, height = image.size
    crop_w = min(width, height * SIZE[0] // SIZE[1])
    crop_h = crop_w * SIZE[1] // SIZE[0]
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    image = image.crop((left, top, left + crop_w, top + crop_h)).resize(SIZE, Image.LANCZOS)
    for quality in range(90, 20, -5):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=True)
        if out.tell() <= MAX_BYTES:
            return out.getvalue()
    raise ValueError(f"{screenshot}: no JPEG quality fits {MAX_BYTES} bytes")


def completed_runs() -> set[tuple[str, str]]:
    """{(template, frontend version)} of the runs the browser test recorded as completed."""
    done = set()
    for record in ARTIFACTS.glob("template_runs_*.json"):
        for key, run in json.loads(record.read_text()).items():
            if run["status"] == "ran":
                done.add(tuple(key.split(" @ ")))
    return done


def main(argv: list[str]) -> int:
    written, done = 0, completed_runs()
    for template in sorted((ROOT / "workflows").glob("*.json")):
        shots = sorted(ARTIFACTS.glob(f"card_{template.stem}_{argv[0] if argv else ''}*.png"),
                       key=lambda p: p.stat().st_mtime)
        shots = [s for s in shots if (template.stem, s.stem.rsplit("_", 1)[1]) in done]
        if not shots:
            print(f"no screenshot of a completed run of {template.stem} in {ARTIFACTS}", file=sys.stderr)
            continue
        data = thumbnail(shots[-1])
        template.with_suffix(".jpg").write_bytes(data)
        print(f"wrote {template.with_suffix('.jpg').name} ({len(data)} bytes) from {shots[-1].name}")
        written += 1
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
