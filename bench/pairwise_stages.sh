#!/usr/bin/env bash
# Two septa binaries in alternating runs of -a separate with SEPTA_SGD_PROFILE=1: per run and
# then as medians per binary, the pairwise factor's stage CPU seconds (pair ties, its SGD
# set-up, pairwise SGD), its SGD's shard parts and mix + step search CPU (the profile's last
# "sgd profile: D=" line), and the process's user + system time.
# usage: bench/pairwise_stages.sh TRAIN_FILE RUNS THREADS BASE_SEPTA NEW_SEPTA [train options...]
set -euo pipefail
train="$1"; runs="$2"; threads="$3"; base="$4"; new="$5"; shift 5
work="$(mktemp -d /tmp/septa_pairwise_XXXXXX)"
trap 'rm -rf "$work"' EXIT
for run in $(seq "$runs"); do
  for name in base new; do
    bin="$base"; [ "$name" = new ] && bin="$new"
    SEPTA_SGD_PROFILE=1 /usr/bin/time -f 'TIME %U %S' "$bin" train -q -a separate \
      --threads "$threads" "$@" -m "$work/model" "$train" 2>&1 >/dev/null |
      awk -v b="$name" '
        /^stage pair ties/ {ties = $5}
        /^stage SGD set-up/ {setup = $5}
        /^stage pairwise SGD/ {pairwise = $5}
        /^sgd profile: D=/ {for (i = 1; i <= NF; i++) {if ($i == "parts") parts = $(i + 1); if ($i == "mix+step") mix = $(i + 1)}}
        /^TIME/ {cpu = $2 + $3}
        END {print b, ties + 0, setup, pairwise, parts, mix, cpu}' | tee -a "$work/runs"
  done
done
echo "medians: binary, pair ties, pairwise set-up, pairwise SGD, its parts, its mix+step, user+sys (CPU s)"
for name in base new; do
  line="$name"
  for c in 2 3 4 5 6 7; do
    line="$line $(awk -v b="$name" -v c="$c" '$1 == b {print $c}' "$work/runs" | sort -g |
                 awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')"
  done
  echo "$line"
done
