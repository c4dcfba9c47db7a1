#!/usr/bin/env bash
# Long fuzzing runs: builds the ASan+UBSan libFuzzer targets (CMakePresets.json "asan") and runs
# each for a number of executions or seconds, niced, growing a persistent corpus per target in
# fuzz-work/<target>/corpus (seeded from the build's generated seeds); crashes land in
# fuzz-work/<target>/ and the log in fuzz-work/<target>.log, whose last lines give the
# executions, exec/s and coverage (cov/ft).
#   scripts/fuzz.sh [--runs N | --seconds S] [--parallel P] [TARGET...]
# Defaults: --runs 10000000, one target at a time, every target.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=(-runs=10000000)
parallel=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) limit=(-runs="$2"); shift 2 ;;
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake --preset asan "${launcher[@]}" >/dev/null
cmake --build --preset asan -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
if [ ${#targets[@]} -eq 0 ]; then targets=($(ls build-asan/fuzz/corpus)); fi
mkdir -p fuzz-work
run_one() {
  local target="$1"
  mkdir -p "fuzz-work/$target/corpus"
  cp -rn "build-asan/fuzz/corpus/$target"/. "fuzz-work/$target/corpus"/
  local start=$SECONDS status=0
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    nice -n 10 "build-asan/fuzz/$target" "${limit[@]}" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="fuzz-work/$target/" "fuzz-work/$target/corpus" \
    >"fuzz-work/$target.log" 2>&1 || status=$?
  local stats
  stats=$(grep -E '^#[0-9]+' "fuzz-work/$target.log" | tail -1)
  echo "$target: exit $status, $((SECONDS - start)) s, last: $stats"
  grep -E 'stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "fuzz-work/$target.log" || true
}
for target in "${targets[@]}"; do
  run_one "$target" &
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do sleep 5; done
done
wait
