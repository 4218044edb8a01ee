# Shared by demo.sh and test.sh: create .venv (Python 3.10+) and install the pack into it.
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed"'
  "$PYTHON" -m venv .venv
fi

install_pack() {
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$1"
}

# SAM2 (for the refine stage) builds from source against the installed torch; SAM2_BUILD_CUDA=0
# skips its optional CUDA extension. Its pins (torchvision among them) are not needed for video
# prediction, hence --no-deps; hydra-core and iopath come with the pack's own dependencies.
install_sam2() {
  .venv/bin/python -c 'import sam2' 2>/dev/null && return 0
  .venv/bin/python -m pip install -q --disable-pip-version-check setuptools wheel
  SAM2_BUILD_CUDA=0 .venv/bin/python -m pip install -q --disable-pip-version-check \
    --no-build-isolation --no-deps "sam2==1.1.0"
}
