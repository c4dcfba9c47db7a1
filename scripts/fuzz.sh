#!/usr/bin/env bash
# Long fuzzing runs: builds the ASan+UBSan libFuzzer targets (CMakePresets.json "asan") and runs
# each for a number of executions or seconds, niced, growing a persistent corpus per target in
# fuzz-work/<target>/corpus (seeded from the build's generated seeds); crashes land in
# fuzz-work/<target>/ and the log in fuzz-work/<target>.log, whose last lines give the
# executions, exec/s and coverage (cov/ft).
#   scripts/fuzz.sh [--runs N] [--seconds S] [--parallel P] [TARGET...]
# Defaults: --runs 10000000 (no time limit), one target at a time, every target built.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=10000000
seconds=0
parallel=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
limit=(-runs="$runs" -max_total_time="$seconds")
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake --preset asan "${launcher[@]}" >/dev/null
cmake --build --preset asan -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
if [ ${#targets[@]} -eq 0 ]; then
  for target in $(ls build-asan/fuzz/corpus); do
    [ -x "build-asan/fuzz/$target" ] && targets+=("$target")
  done
fi
mkdir -p fuzz-work
# Model seeds (whole trained models) are larger than text inputs.
max_len() { case "$1" in model*) echo 16384 ;; *) echo 4096 ;; esac; }
run_one() {
  local target="$1"
  mkdir -p "fuzz-work/$target/corpus"
  cp -rn "build-asan/fuzz/corpus/$target"/. "fuzz-work/$target/corpus"/
  local start=$SECONDS status=0
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    nice -n ${SEPTA_FUZZ_NICE:-10} "build-asan/fuzz/$target" "${limit[@]}" -max_len="$(max_len "$target")" \
    -timeout=10 -rss_limit_mb=2048 \
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
