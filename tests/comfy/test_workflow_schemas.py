"""The committed schema snapshot (scripts/node_schemas.json) is what the live ComfyUI gives, and the
templates built from the live schemas are the committed ones (CI checks them against the snapshot)."""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comfyui_env import COMFYUI_PATH, PACK_ROOT, needs_comfyui  # noqa: E402


@needs_comfyui
def test_snapshot_and_templates_match_the_live_schemas():
    result = subprocess.run([sys.executable, "scripts/build_workflows.py", "--check", "--live"], cwd=PACK_ROOT,
                            env={**os.environ, "COMFYUI_PATH": COMFYUI_PATH}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
