#!/usr/bin/env bash
# The translation study on this machine's translation catalogs (never part of the test suite):
# builds the corpus, trains every setting, merges, evaluates and analyses, niced, logging to
# OUT/study.log. Usage:
#   bench/mt/run_study.sh [OUT] [extra study options...]
# e.g. GROUPS_SPEC="de,fr;ru" bench/mt/run_study.sh /tmp/mt-study --max-train 4000
# The study runs with septa nn mt's defaults (the CPU study of docs/mt.md: six languages in three
# groups, twelve directions, sized for 90 minutes of this 2-core machine); extra options override
# them; --resume continues an interrupted run. Timed by /usr/bin/time -v (wall and CPU seconds on
# the log).
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
OMP_WAIT_POLICY=passive /usr/bin/time -v "$septa" nn mt all --corpus "$out/corpus" --dir "$out/study" \
  --threads 2 "$@" 2>&1 | tee "$out/study.log"
echo "study wall time: $((SECONDS - start)) s" | tee -a "$out/study.log"
