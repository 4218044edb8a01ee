#!/usr/bin/env bash
# Set up .venv and run the main job on the bundled sample scene:
# generate a synthetic video with exact ground truth, reconstruct it from the video and a
# simulated depth network, place the object, propagate, reproject, and score the masks.
# Writes demo_out/ (masks, anchor video, result.png). Extra arguments go to `insertanywhere demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
install_pack "."
exec .venv/bin/insertanywhere demo "$@"
