#!/usr/bin/env bash
# Set up .venv with the test extras and run the whole test suite.
# Extra arguments go to pytest. Set COMFYUI_PATH to a ComfyUI checkout to also run
# the in-process node tier and the real-server tier (they skip without it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
install_pack ".[test]"
install_sam2
exec .venv/bin/python -m pytest -q "$@"
