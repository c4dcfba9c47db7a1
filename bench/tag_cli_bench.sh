#!/usr/bin/env bash
# `septa tag` from the command line, process start and loading included: the wall and CPU time
# (user + system) of tagging the CoNLL-2000 test set with one model per algorithm, medians of
# alternated runs, on one thread and on the default threads (the cores); with --baseline, the
# same runs of another septa binary alternated with them (the same models), its output checked
# byte for byte against this one's.
#
# usage: bench/tag_cli_bench.sh [--septa BIN] [--baseline BIN] [--data DIR] [--runs N]
#                               [--algorithms a,b,...] [--models DIR]
#   --septa BIN       the binary measured (default build/septa)
#   --baseline BIN    a binary to compare with (its runs have no --threads: older binaries)
#   --data DIR        holds conll2000/train.txt and test.txt (default ../shared/data or $SEPTA_DATA)
#   --runs N          alternated runs per variant (default 10)
#   --algorithms LIST default lbfgs,ap,memm,separate,separate-counts,piecewise
#   --models DIR      where the models are kept (trained there by --septa when missing;
#                     default /tmp/septa_tag_bench)
set -euo pipefail
septa=build/septa
baseline=
data=${SEPTA_DATA:-../shared/data}
runs=10
algorithms=lbfgs,ap,memm,separate,separate-counts,piecewise
models=/tmp/septa_tag_bench
while [ $# -gt 0 ]; do
  case "$1" in
    --septa) septa=$2; shift 2 ;;
    --baseline) baseline=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --algorithms) algorithms=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tag_cli_bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
train=$data/conll2000/train.txt
test=$data/conll2000/test.txt
for f in "$train" "$test"; do
  [ -f "$f" ] || { echo "tag_cli_bench.sh: $f not found (--data DIR)" >&2; exit 2; }
done
mkdir -p "$models"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# One run: prints "wall cpu" in seconds (bash's time: millisecond resolution).
run() {
  local TIMEFORMAT='%3R %3U %3S'
  { time "$@" > /dev/null 2>&1; } 2>&1 | awk '{printf "%.3f %.3f\n", $1, $2 + $3}'
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

printf '| algorithm | model MB | variant | wall s | CPU s |\n|---|---|---|---|---|\n'
for algorithm in ${algorithms//,/ }; do
  model=$models/$algorithm.model
  if [ ! -f "$model" ]; then
    "$septa" train -q -a "$algorithm" -m "$model" "$train" > "$out/train.log" 2>&1 ||
      { cat "$out/train.log" >&2; exit 1; }
  fi
  variants=("one thread" "default threads")
  [ -n "$baseline" ] && variants=("baseline" "${variants[@]}")
  for i in $(seq "$runs"); do
    for v in "${variants[@]}"; do
      case "$v" in
        baseline) cmd=("$baseline" tag -m "$model" -o "$out/baseline.txt" "$test") ;;
        "one thread") cmd=("$septa" tag --threads 1 -m "$model" -o "$out/one.txt" "$test") ;;
        *) cmd=("$septa" tag -m "$model" -o "$out/default.txt" "$test") ;;
      esac
      run "${cmd[@]}" >> "$out/${v// /_}.times"
    done
  done
  cmp -s "$out/one.txt" "$out/default.txt" || echo "WARNING: $algorithm: one thread and default threads differ"
  [ -z "$baseline" ] || cmp -s "$out/baseline.txt" "$out/one.txt" ||
    echo "WARNING: $algorithm: the baseline's output differs"
  size=$(awk -v b="$(stat -c %s "$model")" 'BEGIN {printf "%.1f", b / 1e6}')
  for v in "${variants[@]}"; do
    f=$out/${v// /_}.times
    printf '| %s | %s | %s | %.3f | %.3f |\n' "$algorithm" "$size" "$v" \
      "$(cut -d' ' -f1 "$f" | median)" "$(cut -d' ' -f2 "$f" | median)"
    rm -f "$f"
  done
done
echo "medians of $runs alternated runs each; $(cut -d' ' -f1-3 /proc/loadavg) load average at the end"
