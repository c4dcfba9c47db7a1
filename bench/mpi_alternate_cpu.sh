#!/usr/bin/env bash
# Two septa binaries (e.g. main's and a branch's) at N ranks in alternating runs: the CPU time
# (user + system) and peak RSS of every rank, the median over the runs of the busiest rank's
# CPU, and whether the two models are byte-identical. On a loaded host, where wall times say
# nothing, the busiest rank's CPU is the figure to compare.
# usage: bench/mpi_alternate_cpu.sh SEPTA_A SEPTA_B TRAIN_FILE RUNS RANKS [train options...]
set -euo pipefail
a="$1"; b="$2"; train="$3"; runs="$4"; ranks="$5"; shift 5
work="$(mktemp -d /tmp/septa_mpi_alt_XXXXXX)"
trap 'rm -rf "$work"' EXIT
flags=(--oversubscribe)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for run in $(seq "$runs"); do
  for which in A B; do
    septa="$a"; [ "$which" = B ] && septa="$b"
    start=$(date +%s.%N)
    mpirun "${flags[@]}" -n "$ranks" sh -c '/usr/bin/time -f "%U %S %M" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' \
      "$work/$which.$run" "$septa" train -q --threads 1 "$@" -m "$work/$which.model" "$train" 2> /dev/null
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    echo "run $run $which: wall $wall s, per rank CPU s / peak RSS KB: $(for f in "$work/$which.$run".*; do grep -v Command "$f" | awk '{printf "%.2f / %s; ", $1 + $2, $3}'; done)load $(cut -d' ' -f1 /proc/loadavg)"
  done
  cmp -s "$work/A.model" "$work/B.model" && echo "  models identical" || echo "  models DIFFERENT"
done
for which in A B; do
  echo "$which: median CPU of the busiest rank $(for run in $(seq "$runs"); do cat "$work/$which.$run".* | grep -v Command | awk '{c = $1 + $2; if (c > m) m = c} END {print m}'; done | median) s"
done
