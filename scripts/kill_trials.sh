#!/usr/bin/env bash
# Crash safety of saved files: runs `septa tag -o OUT` N times (default 100), killing each run
# with SIGKILL at a random moment in the last part of its run time (where the output is saved),
# alternating two inputs so consecutive outputs differ. After each kill OUT must be byte-equal
# to one of the two complete outputs (0 torn files); the next save must remove every temporary
# file that killed runs left (0 leftovers). Prints the counts.
#   scripts/kill_trials.sh [TRIALS] [SEPTA_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-100}"
septa="${2:-build/septa}"
data="${SEPTA_DATA:-$(pwd)/../shared/data}/conll2000"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -n 30000 "$data/train.txt" >"$work/train.txt"
"$septa" train -q -a separate -m "$work/m.model" "$work/train.txt" 2>/dev/null
cp "$data/test.txt" "$work/in0.txt"
tail -n +30 "$data/test.txt" >"$work/in1.txt"
"$septa" tag -m "$work/m.model" -o "$work/ref0.txt" "$work/in0.txt"
"$septa" tag -m "$work/m.model" -o "$work/ref1.txt" "$work/in1.txt"
start=$(date +%s%N)
"$septa" tag -m "$work/m.model" -o "$work/out.txt" "$work/in0.txt"
run_ms=$(( ($(date +%s%N) - start) / 1000000 ))
torn=0 killed_mid_save=0 leftovers=0 finished=0
for ((i = 0; i < trials; i++)); do
  input="$work/in$((i % 2)).txt"
  # Kill somewhere in [0.5, 1.1] x the run time: the save is at the end.
  delay_ms=$(( run_ms / 2 + RANDOM % (run_ms * 6 / 10 + 1) ))
  "$septa" tag -m "$work/m.model" -o "$work/out.txt" "$input" &
  pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then :; else finished=$((finished + 1)); fi
  wait "$pid" 2>/dev/null || true
  if ! cmp -s "$work/out.txt" "$work/ref0.txt" && ! cmp -s "$work/out.txt" "$work/ref1.txt"; then
    torn=$((torn + 1))
  fi
  if [ -e "$work/out.txt.tmp.$pid" ]; then killed_mid_save=$((killed_mid_save + 1)); fi
done
# One clean save: it must sweep every stale temporary of the killed runs.
"$septa" tag -m "$work/m.model" -o "$work/out.txt" "$work/in0.txt"
leftovers=$(compgen -G "$work/out.txt.tmp.*" | wc -l || true)
echo "trials $trials (run time ${run_ms} ms): finished before the kill $finished," \
     "killed while saving (a temporary existed) $killed_mid_save, torn files $torn," \
     "leftover temporaries after the next save $leftovers"
[ "$torn" -eq 0 ] && [ "$leftovers" -eq 0 ]
