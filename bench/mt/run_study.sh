#!/usr/bin/env bash
# The translation study on this machine's translation catalogs (never part of the test suite):
# builds the corpus, trains every setting, merges, evaluates and analyses, niced, logging to
# OUT/study.log. Usage:
#   bench/mt/run_study.sh [OUT] [extra study options...]
# e.g. GROUPS_SPEC="de,fr;ru" bench/mt/run_study.sh /tmp/mt-study --max-train 4000
# Defaults are the reduced study reported in docs/mt.md (one language, de: the two directions
# de-en and en-de, the most a loaded 2-core machine trains well in an hour); --resume continues
# an interrupted run.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
septa=${SEPTA:-$here/build/septa}
out=${1:-/tmp/septa-mt-study}
shift || true
groups=${GROUPS_SPEC:-"de"}
mkdir -p "$out"
[ -f "$out/corpus/test.nway.tsv" ] || nice "$septa" nn mt build-corpus --corpus "$out/corpus" --groups "$groups" \
  | grep -v '^skipped' | tee "$out/corpus.log"
start=$SECONDS
OMP_WAIT_POLICY=passive nice -n 5 "$septa" nn mt all --corpus "$out/corpus" --dir "$out/study" \
  --vocab 2000 --dim 128 --ff 256 --heads 4 --layers 2 --max-train 10000 --pretrain-epochs 5 \
  --post-epochs 1 --lr 0.002 --post-lr 0.001 --warmup 100 --dev-sample 60 --test-limit 300 --threads 2 "$@" \
  2>&1 | tee "$out/study.log"
echo "study wall time: $((SECONDS - start)) s" | tee -a "$out/study.log"
