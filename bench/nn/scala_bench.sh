#!/usr/bin/env bash
# Scala against separately trained ViTs and US-Net on Fashion-MNIST, same ViT and recipe:
#   1. vit-separate: one dense ViT per width 0.25, 0.5, 0.75, 1 (its r = 1 net can be the teacher)
#   2. scala and usnet (see --teacher and --usnet-teacher)
#   3. scala with eps = 1/8, tested at the off-grid widths between its grid widths (0.3125,
#      0.4375, ..., 0.9375; the "no interpolation" check, target at 0.4375)
#   4. septa nn widths for each run (accuracy, parameters, MACs, latency at batch 1 and 256),
#      a summary against the issue's targets, and a PNG of accuracy against MACs (gnuplot).
#
#   bench/nn/scala_bench.sh [--build DIR] [--out DIR] [--limit N] [--test-limit N] [--epochs E]
#                           [--dim D] [--depth L] [--threads T] [--device D] [--skip-offgrid]
#                           [--options "--pad 0 --flip 0 ..."]   (recipe options for all runs)
#                           [--offgrid-options "..."]  (the eps = 1/8 run only; default
#                             "--fused-qkv 1", the rule that meets the off-grid target)
#                           [--offgrid-widths R1,R2,...]  (default the six above; each r D a
#                             whole number of heads)
#                           [--slim-options "--warmup-epochs 0 ..."]  (scala and usnet only)
#                           [--scala-options "..."]   (the scala run only; default
#                             "--width-scale 1 --no-ia 1", its best setting on validation)
#                           [--data DIR]   (Fashion-MNIST IDX files; default septa-nn's)
#                           [--report-only]   (reports, summary and plot of runs already in --out)
#                           [--latency 0|1]   (0: the width reports skip the latency measurement)
#                           [--deadline T]   (Unix seconds: a report starting within 15 s of T
#                             skips the latency measurement)
#                           [--jobs J]   (1: one training at a time; 2: two at once, logs in --out)
#                           [--teacher 0|1]   (1: scala distils its full width from separate's
#                             r = 1 ViT; default 0, see docs/scala.md)
#                           [--usnet-teacher 0|1] [--usnet-options "..."]   (US-Net: default
#                             teacher 1 and "--warmup-epochs 1", its best measured setting)
# Defaults: the full data, D = 64, depth 4, 10 epochs, 2 jobs of 1 thread each; scala without a
# teacher and without warm-up, with each width's own attention scale and without isolated
# activation (the eps = 1/8 run keeps isolated activation and the full width's scale), usnet with separate's r = 1 ViT as teacher and 1 warm-up epoch
# (each at its best measured setting, docs/scala.md). On 2 cores two 1-thread processes beat one
# 2-thread process (libtorch's OpenMP overhead on small matrices): one lane trains separate's
# r = 1 ViT, then usnet, then separate's smaller ViTs; the other scala, then scala eps = 1/8.
# The reports run afterwards, one at a time (latency wants a quiet machine).
set -euo pipefail
build=build out=scala_bench limit=0 test_limit=0 epochs=10 dim=64 depth=4 threads=1 jobs=2 device=auto
offgrid=1 options="" slim_options="" data="" train=1 teacher=0 usnet_teacher=1 latency=1 deadline=0
offgrid_options="--fused-qkv 1" offgrid_widths=0.3125,0.4375,0.5625,0.6875,0.8125,0.9375
usnet_options="--warmup-epochs 1" scala_options="--width-scale 1 --no-ia 1"
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --test-limit) test_limit=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --dim) dim=$2; shift 2 ;;
    --depth) depth=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --teacher) teacher=$2; shift 2 ;;
    --usnet-teacher) usnet_teacher=$2; shift 2 ;;
    --usnet-options) usnet_options=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --skip-offgrid) offgrid=0; shift ;;
    --offgrid-options) offgrid_options=$2; shift 2 ;;
    --offgrid-widths) offgrid_widths=$2; shift 2 ;;
    --options) options=$2; shift 2 ;;
    --slim-options) slim_options=$2; shift 2 ;;
    --scala-options) scala_options=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --report-only) train=0; shift ;;
    --latency) latency=$2; shift 2 ;;
    --deadline) deadline=$2; shift 2 ;;
    *) echo "scala_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
septa="$build/septa-nn"
[ -x "$septa" ] || { echo "scala_bench: $septa missing (build with -DSEPTA_WITH_TORCH=ON)" >&2; exit 2; }
export OMP_WAIT_POLICY=passive  # busy-waiting OpenMP crawls on shared cores
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$threads}  # no BLAS threads beyond --threads (they spoil batch-1 latency under load)
mkdir -p "$out"
data_option=""; [ -n "$data" ] && data_option="--data $data"
common="--dim $dim --depth $depth --epochs $epochs --limit $limit --test-limit $test_limit --threads $threads --device $device $data_option --seed 1 $options"
stamp() { date -u +%H:%M:%S; }

run() {  # name, then septa nn train arguments
  local name=$1; shift
  echo "== $(stamp) $name: septa nn train $*"
  local start=$(date +%s)
  if [ "$jobs" -gt 1 ]; then
    "$septa" train "$@" --save-dir "$out/$name" > "$out/$name.log" 2>&1 || { echo "$name failed: $out/$name.log" >&2; tail -5 "$out/$name.log" >&2; return 1; }
    tail -1 "$out/$name.log"
  else
    "$septa" train "$@" --save-dir "$out/$name" | tee "$out/$name.log" || return 1
  fi
  echo "$name wall $(( $(date +%s) - start ))s" | tee -a "$out/times.txt"
}

report() {  # name [extra widths options]
  local name=$1; shift
  echo "== $(stamp) widths of $name"
  local no_latency=""; [ "$latency" = 1 ] || no_latency=--no-latency
  if [ "$deadline" != 0 ] && [ $(( $(date +%s) + 15 )) -ge "$deadline" ]; then no_latency=--no-latency; fi
  "$septa" widths --save-dir "$out/$name" --threads 1 --device $device $data_option --test-limit $test_limit $no_latency "$@" | tee "$out/$name.widths"
}

lane() {  # jobs one after the other: "name args..." ...
  for job in "$@"; do
    case "$job" in
      teacher:*) for name in ${job#teacher:}; do cp "$out/separate/vit_1.safetensors" "$out/$name/teacher.safetensors"; done ;;
      await-teacher) while [ ! -e "$out/separate/vit_1.safetensors" ]; do  # written by rename
                       kill -0 "$teacher_lane" 2> /dev/null || return 1; sleep 5; done ;;
      *) run $job || return 1 ;;
    esac
  done
}
if [ "$train" = 1 ]; then
  rm -f "$out/times.txt" "$out/separate/vit_1.safetensors"
  mkdir -p "$out/separate" "$out/separate_small" "$out/scala" "$out/usnet" "$out/scala_eps8"
  distil="--no-teacher 1"; [ "$teacher" = 1 ] && distil=""
  usnet_distil="--no-teacher 1"; [ "$usnet_teacher" = 1 ] && usnet_distil=""
  scala_job="scala --method scala $common $slim_options $scala_options $distil"
  eps8_job=""; [ "$offgrid" = 1 ] && eps8_job="scala_eps8 --method scala --eps 0.125 $common $slim_options $distil $offgrid_options"
  usnet_job="usnet --method usnet $common $slim_options $usnet_options $usnet_distil"
  full_job="separate --method vit-separate --widths 16 $common"
  small_job="separate_small --method vit-separate --widths 4,8,12 $common"
  scala_lane=("$scala_job" ${eps8_job:+"$eps8_job"})
  [ "$teacher" = 1 ] && scala_lane=(await-teacher "teacher:scala scala_eps8" "${scala_lane[@]}")
  usnet_lane=("$usnet_job")
  [ "$usnet_teacher" = 1 ] && usnet_lane=("teacher:usnet" "${usnet_lane[@]}")
  if [ "$jobs" -gt 1 ]; then  # two lanes: separate's r = 1 ViT, usnet, separate's smaller ViTs | scala, eps 1/8
    lane "$full_job" "${usnet_lane[@]}" "$small_job" & teacher_lane=$!
    lane "${scala_lane[@]}" & scala_pid=$!
    status=0; wait $teacher_lane || status=1; wait $scala_pid || status=1
    [ $status = 0 ] || { echo "scala_bench: a training failed" >&2; exit 1; }
  else
    teacher_lane=$$
    lane "$full_job" "${usnet_lane[@]}" "$small_job" "${scala_lane[@]}"
  fi
  mv "$out"/separate_small/vit_*.safetensors "$out/separate/"
fi
report separate || true
report scala || true
report usnet || true
if [ "$offgrid" = 1 ]; then latency=0 report scala_eps8 --off-grid "$offgrid_widths" || true; fi

python3 - "$out" <<'PY'
import sys, os
out = sys.argv[1]
def rows(name):
    path = os.path.join(out, name + ".widths")
    if not os.path.exists(path): return []
    table = []
    for line in open(path).read().splitlines()[1:]:
        f = line.split()
        table.append(dict(r=float(f[0]), d=int(f[1]), grid=f[2] == "yes", acc=float(f[3].rstrip("%")),
                          stored=int(f[4]), active=int(f[5]), macs=int(f[6]), b1=float(f[7]), b256=float(f[8])))
    return table
scala, sep, us, eps8 = rows("scala"), rows("separate"), rows("usnet"), rows("scala_eps8")
for name, table in (("scala", scala), ("separate", sep), ("usnet", us)):
    with open(os.path.join(out, name + ".dat"), "w") as f:
        for t in table:
            if t["grid"]: f.write("%d %.2f %.5f\n" % (t["macs"], t["acc"], t["r"]))
at = lambda table, r: next((t["acc"] for t in table if abs(t["r"] - r) < 1e-9 and t["grid"]), float("nan"))
lines = []
lines.append("r       scala   separate  usnet")
for r in (0.25, 0.5, 0.75, 1.0):
    lines.append("%-6g  %6.2f  %6.2f    %6.2f" % (r, at(scala, r), at(sep, r), at(us, r)))
if scala and sep:
    lines.append("stored parameters: scala %d, separate %d (%.2fx)" % (scala[0]["stored"], sep[0]["stored"], sep[0]["stored"] / scala[0]["stored"]))
    lines.append("target r=0.25 scala >= separate: %.2f vs %.2f -> %s" % (at(scala, .25), at(sep, .25), "MET" if at(scala, .25) >= at(sep, .25) else "NOT MET"))
    lines.append("target r=1 scala within 1 point of separate: %.2f vs %.2f -> %s" % (at(scala, 1), at(sep, 1), "MET" if at(scala, 1) >= at(sep, 1) - 1 else "NOT MET"))
if scala and us:
    ms = sum(at(scala, r) for r in (.25, .5, .75, 1)) / 4; mu = sum(at(us, r) for r in (.25, .5, .75, 1)) / 4
    lines.append("target mean over 0.25..1 scala > usnet: %.2f vs %.2f -> %s" % (ms, mu, "MET" if ms > mu else "NOT MET"))
if scala:
    grid = [t for t in scala if t["grid"]]
    drops = [(a["r"], b["r"], a["acc"] - b["acc"]) for a, b in zip(grid, grid[1:]) if b["acc"] < a["acc"] - 0.5]
    lines.append("target non-decreasing over %d widths (0.5 points noise): %s" % (len(grid), "MET" if not drops else "NOT MET: " + ", ".join("%g->%g -%.2f" % d for d in drops)))
if eps8:  # every off-grid row, met or not, against its grid neighbours
    grid8 = [t for t in eps8 if t["grid"]]
    for off in (t for t in eps8 if not t["grid"]):
        lo = max((t for t in grid8 if t["r"] < off["r"]), key=lambda t: t["r"], default=None)
        hi = min((t for t in grid8 if t["r"] > off["r"]), key=lambda t: t["r"], default=None)
        if lo is None or hi is None: continue
        lines.append("off-grid r=%g (eps 1/8): %.2f; neighbours r=%g %.2f, r=%g %.2f; %+.2f points against the lower" %
                     (off["r"], off["acc"], lo["r"], lo["acc"], hi["r"], hi["acc"], off["acc"] - min(lo["acc"], hi["acc"])))
        if abs(off["r"] - 0.4375) < 1e-9:
            lines.append("target off-grid r=0.4375 (eps 1/8) >= 15 points below both neighbours: %.2f vs %.2f / %.2f -> %s" %
                         (off["acc"], lo["acc"], hi["acc"], "MET" if off["acc"] <= min(lo["acc"], hi["acc"]) - 15 else "NOT MET"))
text = "\n".join(lines)
print(text)
open(os.path.join(out, "summary.txt"), "w").write(text + "\n")
PY

plot_gnuplot() {
  command -v gnuplot > /dev/null || return 1
  gnuplot <<GP
set terminal pngcairo size 900,600
set output "$out/accuracy_vs_macs.png"
set title "Fashion-MNIST: test accuracy against MACs per image (ViT D=$dim, depth $depth, $epochs epochs)"
set xlabel "MACs per image (millions)"
set ylabel "test accuracy (%)"
set key bottom right
set grid
plot "$out/scala.dat" using (\$1/1e6):2 with linespoints pt 7 title "Scala (one model, 13 widths)", \
     "$out/usnet.dat" using (\$1/1e6):2 with linespoints pt 5 title "US-Net (one model)", \
     "$out/separate.dat" using (\$1/1e6):2 with linespoints pt 9 ps 1.5 title "separate training (4 models)"
GP
}
plot_matplotlib() {  # where gnuplot is missing (the GPU machine has matplotlib)
  local py
  for py in python3 /usr/bin/python3; do  # a pyenv python3 may lack Debian's matplotlib
    "$py" - "$out" "$dim" "$depth" "$epochs" 2> /dev/null <<'PY' && return 0
import os, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
out, dim, depth, epochs = sys.argv[1:]
plt.figure(figsize=(9, 6))
for name, marker, label in (("scala", "o", "Scala (one model, 13 widths)"), ("usnet", "s", "US-Net (one model)"),
                            ("separate", "D", "separate training (4 models)")):
    path = os.path.join(out, name + ".dat")
    if not os.path.exists(path) or os.path.getsize(path) == 0: continue
    rows = [list(map(float, l.split())) for l in open(path) if l.strip()]
    plt.plot([r[0] / 1e6 for r in rows], [r[1] for r in rows], marker=marker, label=label)
plt.title("Fashion-MNIST: test accuracy against MACs per image (ViT D=%s, depth %s, %s epochs)" % (dim, depth, epochs))
plt.xlabel("MACs per image (millions)"); plt.ylabel("test accuracy (%)"); plt.grid(True); plt.legend(loc="lower right")
plt.savefig(os.path.join(out, "accuracy_vs_macs.png"), dpi=100)
PY
  done
  return 1
}
if plot_gnuplot || plot_matplotlib; then
  echo "plot: $out/accuracy_vs_macs.png"
else
  echo "scala_bench: no plot (neither gnuplot nor python3's matplotlib worked); the tables above stand" >&2
fi
