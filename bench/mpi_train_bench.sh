#!/usr/bin/env bash
# 1 rank x 1 thread vs N ranks x 1 thread for 'septa train' on one host (loopback TCP, as the
# multi-host path): wall time and peak RSS of every rank, RUNS alternating runs, medians.
# usage: bench/mpi_train_bench.sh SEPTA TRAIN_FILE RUNS RANKS [train options...]
set -euo pipefail
septa="$1"; train="$2"; runs="$3"; ranks="$4"; shift 4
work="$(mktemp -d /tmp/septa_mpi_bench_XXXXXX)"
trap 'rm -rf "$work"' EXIT
# Shared memory between the ranks of one host (MPI_BTL=tcp: loopback TCP, the network path).
flags=(--oversubscribe)
[ "${MPI_BTL:-}" = tcp ] && flags+=(--mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for run in $(seq "$runs"); do
  /usr/bin/time -f "%e %M %U %S" -o "$work/t1.$run" "$septa" train -q --threads 1 "$@" \
    -m "$work/one.model" "$train" 2> /dev/null
  start=$(date +%s.%N)
  mpirun "${flags[@]}" -n "$ranks" sh -c '/usr/bin/time -f "%M %U %S" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' \
    "$work/rss.$run" "$septa" train -q --threads 1 "$@" -m "$work/ranks.model" "$train" 2> /dev/null
  echo "$(date +%s.%N) - $start" | bc > "$work/wall.$run"
  cmp -s "$work/one.model" "$work/ranks.model" && same=identical || same=DIFFERENT
  echo "run $run: 1 rank $(cut -d' ' -f1 "$work/t1.$run") s, $ranks ranks $(cat "$work/wall.$run") s, models $same"
done
one=$(cat "$work"/t1.* | cut -d' ' -f1 | median)
many=$(cat "$work"/wall.* | median)
rss_one=$(cat "$work"/t1.* | cut -d' ' -f2 | median)
rss_rank=$(cat "$work"/rss.* | grep -v Command | cut -d' ' -f1 | median)
rss_max=$(cat "$work"/rss.* | grep -v Command | cut -d' ' -f1 | sort -g | tail -1)
# the larger rank of each run, median over the runs
rss_top=$(for run in $(seq "$runs"); do cat "$work"/rss."$run".* | grep -v Command | cut -d' ' -f1 | sort -g | tail -1; done | median)
# CPU seconds (user + system): of the one process, and of the busiest rank of each run (the
# critical path when every rank has a core of its own; the wall times above share the machine).
cpu_one=$(cat "$work"/t1.* | awk '{print $3 + $4}' | median)
cpu_rank=$(for run in $(seq "$runs"); do cat "$work"/rss."$run".* | grep -v Command | awk '{c = $2 + $3; if (c > m) m = c} END {print m}'; done | median)
cpu_all=$(for run in $(seq "$runs"); do cat "$work"/rss."$run".* | grep -v Command | awk '{s += $2 + $3} END {print s}'; done | median)
echo "median wall: 1 rank $one s, $ranks ranks $many s, speed-up $(echo "scale=2; $one / $many" | bc)"
echo "median CPU s: 1 rank $cpu_one, busiest of $ranks ranks $cpu_rank (ratio $(echo "scale=2; $cpu_one / $cpu_rank" | bc)), all ranks together $cpu_all"
echo "median peak RSS: 1 rank $((rss_one / 1024)) MB, per rank at $ranks ranks $((rss_rank / 1024)) MB ($(echo "scale=0; 100 * $rss_rank / $rss_one" | bc)%)"
echo "peak RSS of the larger rank: median $((rss_top / 1024)) MB ($(echo "scale=0; 100 * $rss_top / $rss_one" | bc)%), largest of all runs $((rss_max / 1024)) MB ($(echo "scale=0; 100 * $rss_max / $rss_one" | bc)%)"
echo "per run (1 rank: wall s, RSS KB, CPU s; each rank: RSS KB, CPU s):"
for run in $(seq "$runs"); do
  echo "  run $run: $(awk '{print $1, $2, $3 + $4}' "$work/t1.$run") | $(for f in "$work"/rss."$run".*; do grep -v Command "$f" | awk '{printf "%s %.2f; ", $1, $2 + $3}'; done)"
done
