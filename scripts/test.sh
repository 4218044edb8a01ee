#!/usr/bin/env bash
# Set up .venv with the test extras, then: lint (ruff), the browser modules' unit tests (node --test),
# the templates against their builder (build_workflows.py --check), and the whole pytest suite in a
# random order (pytest-randomly; rerun one order with -p randomly -p "randomly_seed=N").
# Extra arguments go to pytest. Set COMFYUI_PATH to a ComfyUI checkout to also run
# the in-process node tier and the real-server tier (they skip without it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
install_pack ".[test]"
install_sam2
.venv/bin/ruff check .
.venv/bin/python scripts/build_workflows.py --check  # committed templates == a rebuild from the schema snapshot
if command -v node >/dev/null; then
  node --test tests/js
else
  echo "node not found: skipping the browser modules' unit tests (tests/js); install Node.js 18+ to run them" >&2
fi
exec .venv/bin/python -m pytest -q "$@"
