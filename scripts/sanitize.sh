#!/usr/bin/env bash
# CI's sanitizer step: builds the CRF library, CLI, tests and fuzz targets with clang under
# ASan + UBSan (CMakePresets.json "asan"), runs the CRF and CLI tests, then each fuzz target for
# a short fixed number of runs from its generated seed corpus. Any sanitizer report fails it.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
runs="${SEPTA_FUZZ_CI_RUNS:-20000}"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake --preset asan "${launcher[@]}" >/dev/null
cmake --build --preset asan -j "$jobs"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
# The CRF library and CLI tests (one process; the CLI tests run the ASan-built septa).
build-asan/tests/crf/crf_tests --gtest_brief=1
for target in $(ls build-asan/fuzz/corpus); do
  [ -x "build-asan/fuzz/$target" ] || continue  # e.g. idx_fuzz before src/nn/data/idx.cc exists
  corpus="build-asan/fuzz/corpus/$target"
  work=$(mktemp -d)
  # -runs counts executions; a fresh corpus copy keeps the generated seeds unchanged.
  cp -r "$corpus"/. "$work"/
  echo "fuzz $target: $runs runs"
  max_len=4096
  case "$target" in model*) max_len=16384 ;; esac  # seeds are whole trained models
  if ! "build-asan/fuzz/$target" -runs="$runs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "$work" >"$work.log" 2>&1; then
    tail -50 "$work.log"
    echo "fuzz $target: FAILED (a crash, leak, timeout or sanitizer report above)"
    exit 1
  fi
  grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec' "$work.log" || true
  rm -rf "$work" "$work.log"
done
