#!/usr/bin/env bash
# The translation study on this machine's translation catalogs (never part of the test suite):
# builds the corpus, trains every setting, merges, evaluates and analyses, niced, logging to
# OUT/study.log. Usage:
#   bench/mt/run_study.sh [OUT] [extra study options...]
# e.g. bench/mt/run_study.sh /tmp/mt-study --max-train 4000 --dim 128 --ff 256
# Defaults are the reduced study reported in docs/mt.md; --resume continues an interrupted run.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
septa=${SEPTA:-$here/build/septa}
out=${1:-/tmp/septa-mt-study}
shift || true
groups=${GROUPS_SPEC:-"de,fr,es;ru;ja,zh_CN"}
mkdir -p "$out"
[ -f "$out/corpus/test.nway.tsv" ] || nice "$septa" nn mt build-corpus --corpus "$out/corpus" --groups "$groups" \
  | grep -v '^skipped' | tee "$out/corpus.log"
start=$SECONDS
OMP_WAIT_POLICY=passive nice -n 5 "$septa" nn mt all --corpus "$out/corpus" --dir "$out/study" \
  --vocab 2000 --dim 64 --ff 128 --heads 4 --layers 2 --max-train 1500 --pretrain-epochs 2 \
  --post-epochs 1 --test-limit 200 --lr 0.001 --post-lr 0.0005 --threads 1 "$@" \
  2>&1 | tee "$out/study.log"
echo "study wall time: $((SECONDS - start)) s" | tee -a "$out/study.log"
