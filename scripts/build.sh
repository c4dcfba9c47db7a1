#!/usr/bin/env bash
# Configures and builds septa (CRF library, CLI, tests, benchmarks, neural modules) in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSEPTA_WITH_TORCH="${SEPTA_WITH_TORCH:-ON}" -DSEPTA_WITH_MPI="${SEPTA_WITH_MPI:-ON}" >/dev/null
cmake --build build -j "$jobs"
