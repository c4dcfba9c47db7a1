#!/usr/bin/env bash
# Builds the Python package into a virtual environment over Debian's python3 and runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(pwd)/build/venv"  # absolute: used again after cd build
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
# python/setup.py builds the extension as the CMake target septa_python; in build/, which
# scripts/build.sh has already built, it only checks that the target is up to date. Should it
# compile (a first build), print a line every 30 s meanwhile.
echo "building and installing the Python extension into $venv (pip)"
SEPTA_CMAKE_BUILD_DIR="$(pwd)/build" "$venv/bin/python" -m pip install --no-index --no-build-isolation --no-deps -q ./python &
pip_pid=$!
waited=0
while kill -0 "$pip_pid" 2>/dev/null; do
  sleep 5
  waited=$((waited + 5))
  if [ $((waited % 30)) -eq 0 ] && kill -0 "$pip_pid" 2>/dev/null; then
    echo "  still compiling the extension ($waited s)"
  fi
done
wait "$pip_pid"
echo "Python extension installed; running pytest"
cd build  # import the installed package, not the source folder
SEPTA_CLI="$(pwd)/septa" "$venv/bin/python" -m pytest -q ../python/tests
