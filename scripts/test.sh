#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs ctest (C++ and neural tests) and
# the Python package's tests. Idempotent; run from anywhere. Each step prints a header with the
# time so far.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo "== [$(( $(date +%s) - start )) s] $*"; }
step "setup (apt packages)"
bash scripts/setup.sh
step "build (everything; the first build takes a while)"
bash scripts/build.sh
export SEPTA_DATA="${SEPTA_DATA:-$(pwd)/../shared/data}"
step "ctest"
ctest --test-dir build --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" --timeout 600
# The CRF and CLI tests again under ASan + UBSan (clang), and each fuzz target for a short fixed
# number of runs (about 5-7 minutes on 2 cores, most of it the build).
bash scripts/sanitize.sh
if [ -f python/pyproject.toml ]; then
  step "python package"
  bash scripts/python_test.sh
fi
step "done"
