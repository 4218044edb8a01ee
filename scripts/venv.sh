# Shared by demo.sh and test.sh: create .venv (Python 3.10+) and install the pack into it.
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is needed"'
  "$PYTHON" -m venv .venv
fi

install_pack() {
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$1"
}
