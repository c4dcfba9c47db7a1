#!/usr/bin/env bash
# Configures and builds septa in build/. With no arguments: everything (CRF library, CLI,
# tests, benchmarks, neural modules when SEPTA_WITH_TORCH=ON, the default). With target names
# (e.g. `scripts/build.sh septa`): only those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSEPTA_WITH_TORCH="${SEPTA_WITH_TORCH:-ON}" -DSEPTA_WITH_MPI="${SEPTA_WITH_MPI:-ON}" >/dev/null
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build build -j "$jobs" "${targets[@]}"
