#!/usr/bin/env bash
# The main job: install, build, then train, tag and evaluate CoNLL-2000 chunking with standard
# CRF training (and CR-F separate training when available), printing scores and times.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/setup.sh
bash scripts/build.sh

data="${SEPTA_DATA:-$root/../shared/data}"
conll="$data/conll2000"
if [ ! -f "$conll/train.txt" ] || [ ! -f "$conll/test.txt" ]; then
  echo "CoNLL-2000 not found under $conll; downloading it from its official address"
  mkdir -p "$conll"
  base="https://www.clips.uantwerpen.be/conll2000/chunking"
  for f in train test; do
    if ! { curl -fsSL "$base/$f.txt.gz" -o "$conll/$f.txt.gz.part" ||
           wget -q "$base/$f.txt.gz" -O "$conll/$f.txt.gz.part"; }; then
      echo "error: could not download $base/$f.txt.gz; set SEPTA_DATA to a folder holding conll2000/{train,test}.txt" >&2
      exit 1
    fi
    gunzip -c "$conll/$f.txt.gz.part" > "$conll/$f.txt.part" && mv "$conll/$f.txt.part" "$conll/$f.txt"
    rm -f "$conll/$f.txt.gz.part"
  done
fi
echo "data: $conll/train.txt ($(grep -c . "$conll/train.txt") tokens), $conll/test.txt"

out="$root/build/main"
mkdir -p "$out"
septa="$root/build/septa"
algorithms=(lbfgs)
if "$septa" train --help | grep -q separate; then algorithms+=(separate); fi
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
