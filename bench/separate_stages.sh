#!/usr/bin/env bash
# Septa binaries (e.g. main's and a branch's) in alternating runs of -a separate with
# SEPTA_SGD_PROFILE=1: per binary the medians of wall and user + system time and of every
# stage line's CPU, calling thread's CPU and wall (a stage printed twice, e.g. the two SGD
# set-ups, is numbered #2), and whether each binary's model equals the first binary's.
# usage: bench/separate_stages.sh TRAIN_FILE RUNS THREADS SEPTA... [-- train options...]
set -euo pipefail
train="$1"; runs="$2"; threads="$3"; shift 3
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do bins+=("$1"); shift; done
[ $# -gt 0 ] && shift
work="$(mktemp -d /tmp/septa_stages_XXXXXX)"
trap 'rm -rf "$work"' EXIT
for run in $(seq "$runs"); do
  for i in "${!bins[@]}"; do
    SEPTA_SGD_PROFILE=1 /usr/bin/time -f "TIME %e %U %S" "${bins[$i]}" train -q -a separate \
      --threads "$threads" "$@" -m "$work/model.$i" "$train" > /dev/null 2> "$work/log.$i.$run"
  done
done
for i in "${!bins[@]}"; do
  same=yes; cmp -s "$work/model.0" "$work/model.$i" || same=no
  python3 - "$work" "$i" "$runs" "${bins[$i]}" "$same" <<'PY'
import collections, re, statistics, sys
work, i, runs, name, same = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
wall, cpu, stages = [], [], collections.OrderedDict()
for run in range(1, runs + 1):
    seen = collections.Counter()
    for line in open(f"{work}/log.{i}.{run}"):
        if line.startswith("TIME "):
            _, w, u, s = line.split()
            wall.append(float(w)); cpu.append(float(u) + float(s))
        m = re.match(r"stage (.+?)\s+cpu ([\d.]+) s\s+this thread ([\d.]+) s\s+wall ([\d.]+)", line)
        if m:
            stage = m.group(1).strip(); seen[stage] += 1
            key = stage if seen[stage] == 1 else f"{stage} #{seen[stage]}"
            stages.setdefault(key, []).append([float(m.group(k)) for k in (2, 3, 4)])
med = statistics.median
print(f"{name}: wall {med(wall):.3f} s, user+sys {med(cpu):.3f} s (medians of {runs}); "
      f"model as the first binary's: {same}")
for stage, v in stages.items():
    print(f"  {stage:22s} cpu {med([x[0] for x in v]):.3f}  this thread {med([x[1] for x in v]):.3f}"
          f"  wall {med([x[2] for x in v]):.3f}")
PY
done
