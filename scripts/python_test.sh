#!/usr/bin/env bash
# Builds the Python package into a virtual environment over Debian's python3 and runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(pwd)/build/venv"  # absolute: used again after cd build
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install --no-index --no-build-isolation --no-deps -q ./python
cd build  # import the installed package, not the source folder
SEPTA_CLI="$(pwd)/septa" "$venv/bin/python" -m pytest -q ../python/tests
