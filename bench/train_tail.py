#!/usr/bin/env python3
"""What `septa train -a separate` spends after training: saving the model and exiting.

Alternating runs of each binary with SEPTA_SGD_PROFILE=1; per binary the medians of the wall
time from the "stage final report" line to the process's end, of the CPU time after the last
stage (the process's user + system time minus its stages' CPU), and of the whole wall.
Run it under `chrt -r 1` on a loaded machine for quiet-like walls (docs/crf.md).

usage: bench/train_tail.py RUNS THREADS TRAIN_FILE SEPTA... [-- train options...]
"""
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) < 5 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) > 1 else 2
    runs, threads, train = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rest = sys.argv[4:]
    extra = rest[rest.index("--") + 1:] if "--" in rest else []
    bins = rest[:rest.index("--")] if "--" in rest else rest
    env = dict(os.environ, SEPTA_SGD_PROFILE="1")
    stage = re.compile(rb"stage .*?cpu ([\d.]+) s")
    results = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as work:
        for _ in range(runs):
            for binary in bins:
                start = time.monotonic()
                child = subprocess.Popen(
                    [binary, "train", "-q", "-a", "separate", "--threads", threads, *extra,
                     "-m", os.path.join(work, "model"), train],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
                last = None
                stages_cpu = 0.0
                for line in child.stderr:
                    match = stage.match(line)
                    if match:
                        stages_cpu += float(match.group(1))
                    if line.startswith(b"stage final report"):
                        last = time.monotonic()
                _, status, usage = os.wait4(child.pid, 0)
                end = time.monotonic()
                if status != 0 or last is None:
                    print(f"{binary}: failed (status {status})", file=sys.stderr)
                    return 1
                cpu = usage.ru_utime + usage.ru_stime
                results[binary].append((end - last, cpu - stages_cpu, end - start))
    for binary, values in results.items():
        med = [statistics.median(v[i] for v in values) for i in range(3)]
        print(f"{binary}: after the last stage wall {med[0]:.4f} s (min "
              f"{min(v[0] for v in values):.4f}), CPU {med[1]:.3f} s; whole wall {med[2]:.3f} s; "
              f"medians of {len(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
