#!/usr/bin/env bash
# Alternating A/B of two septa-nn binaries on one short fixed training (never part of the test
# suite): `mt train` with 500 pairs per direction, one pre-training epoch (94 steps), one
# post-training epoch of 20 pairs per direction, on a given corpus and tokenizer. One line per
# run: the pre-training loss, wall, user and system seconds, minor page faults. Usage:
#   bench/mt/runtime_ab.sh OLD_BINARY NEW_BINARY CORPUS SPM_MODEL [REPS=3] [WORK=/tmp/septa-mt-ab]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
export SEPTA_SPM=${SEPTA_SPM:-$here/build/septa-spm}  # the tokenizer helper, for binaries copied elsewhere
old=$1 new=$2 corpus=$3 spm=$4 reps=${5:-3} work=${6:-/tmp/septa-mt-ab}
mkdir -p "$work"
run() {
  local name=$1 bin=$2 dir="$work/$1"
  rm -rf "$dir"
  OMP_WAIT_POLICY=passive /usr/bin/time -f "wall %e user %U sys %S minflt %R" "$bin" mt train --corpus "$corpus" \
    --dir "$dir" --tokenizer "$spm" --threads 2 --max-train 500 --pretrain-epochs 1 --post-epochs 1 \
    --post-max-train 20 2>&1 | grep -E '^\[pretrain\]|^wall' | tr '\n' ' ' | sed "s/^/$name /"
  echo " load $(cut -d' ' -f1 /proc/loadavg) pretrain_sha $(sha256sum "$dir/models/pretrain.safetensors" | cut -c1-12)"
}
for ((r = 1; r <= reps; ++r)); do
  run old "$old"
  run new "$new"
done
