#!/usr/bin/env bash
# CRF-only lease of the 16-core GPU machine (no neural build): the thread-scaling table of
# issue #8, stage profiles of `septa train -a separate`, and model loading/tagging times.
# Prepared here by bench/device_prepare.sh (CRF binaries and data in .dev/), run there as
#   DEVICE_BUDGET_S=300 bash bench/device_crf.sh "$OUT"
# Never part of the test suite. Output: OUT/log.txt (and OUT/bench.txt, the raw crf_bench lines).
set -u
out=${1:?usage: device_crf.sh OUT}
dev=$PWD/.dev
start=$SECONDS
log=$out/log.txt
say() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - start))s] $*" | tee -a "$log"; }
budget=${DEVICE_BUDGET_S:-300}
left() { echo $((budget - (SECONDS - start))); }
say "env: $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p /tmp/data && tar xJf "$dev/data/conll.tar.xz" -C /tmp/data
bench="$dev/bin/crf_bench --data /tmp/data"
septa=$dev/bin/septa
export LD_LIBRARY_PATH=$dev/deps/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
crf() {  # limit, then crf_bench arguments
  local limit=$1; shift
  [ "$(left)" -gt 20 ] || { say "skipped (time): $*"; return; }
  [ "$limit" -lt "$(left)" ] || limit=$(( $(left) - 10 ))
  say "crf_bench $*"
  timeout "$limit" $bench "$@" 2>&1 | tee -a "$out/bench.txt" | grep -v '^\[' >> "$log" || say "exit (timeout $limit s?)"
}
crf 100 --tasks chunk,ner,pos --algorithms separate --threads 1,2,4,8,16 --runs 1
crf 80 --tasks chunk,ner,pos --algorithms lbfgs --threads 16 --runs 1
crf 60 --tasks chunk,ner,pos --algorithms separate --threads 1,16 --runs 3
for t in 16 1; do  # where the time goes (chunk)
  [ "$(left)" -gt 20 ] || break
  say "stage profile, septa train -a separate --threads $t (chunk)"
  SEPTA_SGD_PROFILE=1 timeout 20 "$septa" train -q -a separate --threads $t -m /tmp/sep$t.model \
    /tmp/data/conll2000/train.txt >> "$log" 2>&1
done
cmp -s /tmp/sep1.model /tmp/sep16.model && say "models at 1 and 16 threads: byte-identical"
if [ -f /tmp/sep16.model ]; then  # loading: one sentence with the 31 MB model, then the test set
  head -20 /tmp/data/conll2000/test.txt > /tmp/one.txt
  TIMEFORMAT='%R wall %U user %S sys'
  for t in 1 2 3 4 5; do
    { time "$septa" tag -m /tmp/sep16.model --threads 1 /tmp/one.txt > /dev/null; } 2>> /tmp/load.txt
    { time "$septa" tag -m /tmp/sep16.model --threads 1 /tmp/data/conll2000/test.txt > /dev/null; } 2>> /tmp/tag.txt
  done
  say "load $(ls -l /tmp/sep16.model | awk '{print $5}') bytes + one sentence, 5 runs:"; cat /tmp/load.txt >> "$log"
  say "tag the CoNLL-2000 test set, one thread, 5 runs:"; cat /tmp/tag.txt >> "$log"
fi
say "done"
