#!/usr/bin/env bash
# The main job: install, build, then train, tag and evaluate CoNLL-2000 chunking with standard
# CRF training (and CR-F separate training when available), printing scores and times.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/setup.sh
# The main job needs only the command-line tool: not the neural modules, tests or benchmarks.
if [ ! -x build/septa ]; then
  echo "building build/septa (first build: about 3 minutes on 2 idle cores; later runs are incremental)"
fi
SEPTA_WITH_TORCH=OFF bash scripts/build.sh septa

data="${SEPTA_DATA:-$root/../shared/data}"
conll="$data/conll2000"
for f in train test; do
  if [ ! -f "$conll/$f.txt" ]; then
    echo "error: $conll/$f.txt not found. Put CoNLL-2000 (train.txt, test.txt) in ../shared/data/conll2000/" >&2
    echo "       beside this checkout, or set SEPTA_DATA to a folder holding conll2000/{train,test}.txt" >&2
    exit 1
  fi
done
echo "data: $conll/train.txt ($(grep -c . "$conll/train.txt") tokens), $conll/test.txt"

out="$root/build/main"
mkdir -p "$out"
septa="$root/build/septa"
algorithms=(lbfgs)
# grep reads all of the help (no -q): an early exit would end septa by SIGPIPE, and pipefail would
# then skip separate training at random.
if "$septa" train --help | grep separate > /dev/null; then algorithms+=(separate); fi
for algorithm in "${algorithms[@]}"; do
  echo
  echo "== septa train -a $algorithm (default chunking template, c2=1, 2 threads)"
  start=$(date +%s.%N)
  "$septa" train -a "$algorithm" --threads 2 -m "$out/$algorithm.model" "$conll/train.txt" 2>&1 |
    awk 'NR % 20 == 1 || /trained|read/'
  train_end=$(date +%s.%N)
  "$septa" tag -m "$out/$algorithm.model" -o "$out/$algorithm.tagged" "$conll/test.txt"
  tag_end=$(date +%s.%N)
  awk -v a="$start" -v b="$train_end" -v c="$tag_end" \
    'BEGIN { printf "read+train %.1f s, tag %.2f s\n", b - a, c - b }'
  "$septa" eval "$out/$algorithm.tagged"
done
