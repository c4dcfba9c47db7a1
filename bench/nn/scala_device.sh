#!/usr/bin/env bash
# Scala, separately trained ViTs and US-Net on Fashion-MNIST at a GPU size, inside a time budget.
#
#   bench/nn/scala_device.sh BUILD_DIR DATA_DIR OUT_DIR
#
# BUILD_DIR holds septa-nn built with -DSEPTA_WITH_TORCH=ON against a CUDA libtorch
# (-DSEPTA_TORCH_DIR=$(python3 -c "import torch; print(torch.utils.cmake_prefix_path)")),
# DATA_DIR the four Fashion-MNIST .gz files, OUT_DIR receives the runs, the per-width reports
# (*.widths), summary.txt, accuracy_vs_macs.png and device.log.
#
# Steps: (1) a calibration run (a few batches of the teacher and of a Scala step; JOBS copies at
# once, so that it sees the lanes' sharing of the GPU) measures the seconds per epoch and per
# process start-up; (2) the number of epochs is the largest for which
# the trainings, start-ups, width reports and plot fit BUDGET_S (EPOCHS=auto); (3) scala_bench.sh
# trains vit-separate, scala, usnet and scala with eps = 1/8 (the off-grid check, by default with
# the official code's fused q/k/v slicing), in JOBS lanes at once on the one GPU, then writes the
# reports, summary and plot.
#
# On a GPU this ViT is bound by kernel launches, not arithmetic (an epoch at batch 256 took the
# same 7 s at D = 48 as at D = 192 on an H100), so the recipe here uses few, large steps: batch
# 1024 with DeiT's learning-rate rule lr = 5e-4 * batch / 512 = 1e-3, learning-rate warm-up over
# the first tenth of the epochs, TF32 matrix products; the data and the augmentation already live
# on the GPU, and the optimiser is the multi-tensor AdamW (src/nn/foreach_adamw.h).
# Every knob below can be set from the environment, e.g. BUDGET_S=180 DIM=128 bench/nn/...
# TINY=1 is a CPU smoke test of the whole script at toy size (a few minutes on 2 busy cores).
set -uo pipefail

BUDGET_S=${BUDGET_S:-300}       # whole script, wall seconds, calibration, reports and plot included
REPORT_S=${REPORT_S:-40}        # kept for the four width reports (latency included) and the plot
DEVICE=${DEVICE:-cuda}          # cuda | cpu | auto
DIM=${DIM:-192}                 # ViT width D (every grid width r D must be a multiple of HEADS)
DEPTH=${DEPTH:-6}               # transformer blocks
HEADS=${HEADS:-4}
PATCH=${PATCH:-4}               # 4: 49 tokens (+ cls and dist) on 28 x 28 images
BATCH=${BATCH:-1024}
LR=${LR:-0.001}                 # AdamW peak learning rate (cosine schedule); DeiT: 5e-4 * BATCH / 512
LR_WARMUP=${LR_WARMUP:-auto}    # epochs of learning-rate warm-up (auto: a tenth of the epochs, >= 0.5)
WARMUP_EPOCHS=${WARMUP_EPOCHS:-0}  # Scala / US-Net: first epochs of the full width alone
TEACHER=${TEACHER:-0}           # 1: Scala distils its full width from separate's r = 1 ViT
TF32=${TF32:-1}                 # 1: float32 matrix products on TF32 tensor cores (--tf32)
PAD=${PAD:-2}                   # random-crop padding (0: none)
FLIP=${FLIP:-1}                 # random horizontal flips
EPOCHS=${EPOCHS:-auto}          # a number, or auto: the most that fit BUDGET_S
EPOCHS_MIN=${EPOCHS_MIN:-1}
EPOCHS_MAX=${EPOCHS_MAX:-40}
LIMIT=${LIMIT:-0}               # training images (0: all 60000)
TEST_LIMIT=${TEST_LIMIT:-0}     # test images (0: all 10000)
OFFGRID=${OFFGRID:-1}           # 1: also train scala with eps = 1/8 for the off-grid check
OFFGRID_OPTIONS=${OFFGRID_OPTIONS:---fused-qkv 1}  # the eps = 1/8 run's slicing (the paper's)
THREADS=${THREADS:-4}           # CPU cores given to this script (device_run.sh: 4); each lane's process gets THREADS / JOBS
JOBS=${JOBS:-2}                 # trainings at once on the GPU (lanes)
CONTENTION=${CONTENTION:-auto}  # margin on the calibrated times (auto: 1.3; the calibration runs JOBS copies at once, but before the MT study beside it loads the GPU)
EVAL_S=${EVAL_S:-1}             # seconds per training epoch for its test evaluation (not in the epoch times)
CAL_BATCHES=${CAL_BATCHES:-30}  # batches per calibration epoch
SEED=${SEED:-1}
if [ "${TINY:-0}" = 1 ]; then   # CPU smoke test of every step at toy size
  DEVICE=${TINY_DEVICE:-cpu} DIM=32 DEPTH=1 HEADS=2 PATCH=7 BATCH=64 LIMIT=1024 TEST_LIMIT=300
  BUDGET_S=${TINY_BUDGET_S:-150} REPORT_S=${TINY_REPORT_S:-40} CAL_BATCHES=4 THREADS=2 LR=0.003
  EVAL_S=0.2
fi

THREADS=$(( THREADS / JOBS )); [ "$THREADS" -ge 1 ] || THREADS=1   # per process

if [ $# -ne 3 ]; then
  echo "usage: bench/nn/scala_device.sh BUILD_DIR DATA_DIR OUT_DIR   (knobs: see the script's head)" >&2
  exit 2
fi
build=$1 data=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
septa="$build/septa-nn"
if [ ! -x "$septa" ]; then
  echo "scala_device: $septa missing: configure with -DSEPTA_WITH_TORCH=ON and build the target septa-nn" >&2
  exit 2
fi
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -e "$data/$f.gz" ] || [ -e "$data/$f" ] || { echo "scala_device: $data/$f.gz missing" >&2; exit 2; }
done
mkdir -p "$out"
exec > >(tee -a "$out/device.log") 2>&1
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
say() { echo "== [$(date -u +%H:%M:%S) +$(elapsed)s] $*"; }
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=$THREADS
say "scala_device: D=$DIM depth=$DEPTH heads=$HEADS patch=$PATCH batch=$BATCH lr=$LR device=$DEVICE budget=${BUDGET_S}s"
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true

recipe="--heads $HEADS --patch $PATCH --batch $BATCH --lr $LR --pad $PAD --flip $FLIP --tf32 $TF32 --seed $SEED"
[ "$CONTENTION" = auto ] && CONTENTION=1.3

# (1) Calibration: teacher epochs time a dense full-width step; Scala's second epoch (the first
# is its full-width warm-up) times a sandwich step with the teacher's forward. The process's wall
# time less its epochs is what a start-up costs (loading libtorch, CUDA and the data).
n_train=$LIMIT; [ "$n_train" = 0 ] && n_train=60000
if [ "$EPOCHS" = auto ]; then
  cal_n=$(( CAL_BATCHES * BATCH )); [ $cal_n -gt $n_train ] && cal_n=$n_train
  say "calibration: $cal_n images, 2 teacher epochs and 2 scala epochs, $JOBS at once (as the lanes will run)"
  cal_start=$(date +%s.%N)
  cal_pids=()
  for k in $(seq 1 "$JOBS"); do
    "$septa" train --method scala --dim $DIM --depth $DEPTH $recipe --lr-warmup 0.5 --epochs 2 --teacher-epochs 2 \
        --warmup-epochs 1 --limit $cal_n --test-limit 500 --data "$data" --device "$DEVICE" --threads $THREADS \
        > "$out/calibration$k.log" 2>&1 &
    cal_pids+=($!)
  done
  rc=0; for p in "${cal_pids[@]}"; do wait "$p" || rc=$?; done
  cal_wall=$(python3 -c "import time; print('%.1f' % (time.time() - $cal_start))")
  cat "$out"/calibration*.log
  if [ $rc -ne 0 ]; then say "calibration failed (exit $rc): see $out/calibration*.log"; exit 1; fi
  EPOCHS=$(python3 - $cal_n $n_train $OFFGRID $BUDGET_S $REPORT_S $(elapsed) $EPOCHS_MIN $EPOCHS_MAX \
           $cal_wall $JOBS $CONTENTION $EVAL_S "$out"/calibration*.log <<'PY'
import re, sys
cal_n, n, offgrid, budget, report, spent, lo, hi, cal_wall, jobs, contention, eval_s = map(float, sys.argv[1:13])
t = {}  # the slowest of the concurrent calibrations, per stage and epoch
for log in sys.argv[13:]:
    for line in open(log):
        m = re.match(r"\[(\w+)\] epoch (\d+)/\d+ .* ([0-9.]+)s$", line.strip())
        if m:
            key = (m.group(1), int(m.group(2)))
            t[key] = max(t.get(key, 0.0), float(m.group(3)))
# Epoch times are printed to 0.1 s: floor them (a sandwich step holds a full-width step, and
# costs at most about 4 of them).
scala = max(t[("scala", 2)], 0.1) * n / cal_n              # one sandwich epoch (+ teacher forward)
full = max(t[("teacher", 2)] * n / cal_n, scala / 4)       # one dense full-width epoch
startup = max(cal_wall - sum(t.values()), 2.0)             # one process's start-up and save
# Lane A: separate's r = 1 ViT, usnet, separate's three smaller ViTs (3 processes; each ViT at
# most a full-width epoch: launch-bound). Lane B: scala, scala eps = 1/8 (1 + offgrid processes).
# Time of a lane = fixed + per_epoch * E; with one lane both run one after the other.
a_fixed, a_epoch = 3 * startup, 4 * (full + eval_s) + scala + eval_s
b_fixed, b_epoch = (1 + offgrid) * startup, (1 + offgrid) * (scala + eval_s)
left = budget - report - spent
if jobs > 1:
    e = min((left / contention - a_fixed) / a_epoch, (left / contention - b_fixed) / b_epoch)
else:
    e = (left / contention - a_fixed - b_fixed) / (a_epoch + b_epoch)
e = int(max(lo, min(hi, e)))
lanes = [a_fixed + e * a_epoch, b_fixed + e * b_epoch]
train = contention * (max(lanes) if jobs > 1 else sum(lanes))
print("calibration: full-width epoch %.1fs, scala epoch %.1fs, start-up %.1fs; %d lane(s), contention %.2f; "
      "%.0fs left for training -> %d epochs (about %.0fs of training with the margin; lanes %.0fs and %.0fs)"
      % (full, scala, startup, jobs, contention, left, e, train, lanes[0], lanes[1]), file=sys.stderr)
print(e)
PY
)
  [ -n "$EPOCHS" ] || { say "calibration could not be read"; exit 1; }
fi
if [ "$LR_WARMUP" = auto ]; then
  LR_WARMUP=$(python3 -c "print(max(0.5, round(0.1 * $EPOCHS, 1)))")
fi
say "training $EPOCHS epochs per method (learning-rate warm-up $LR_WARMUP epochs)"
recipe="$recipe --lr-warmup $LR_WARMUP"

# (2) + (3): the bench itself (training, width reports, summary, plot).
bench=("$here/scala_bench.sh" --build "$build" --out "$out" --data "$data" --limit $LIMIT
       --test-limit $TEST_LIMIT --epochs $EPOCHS --dim $DIM --depth $DEPTH --threads $THREADS --jobs $JOBS --teacher $TEACHER
       --device "$DEVICE" --options "$recipe" --slim-options "--warmup-epochs $WARMUP_EPOCHS"
       --deadline $(( t0 + BUDGET_S )))
if [ "$OFFGRID" = 1 ]; then bench+=(--offgrid-options "$OFFGRID_OPTIONS"); else bench+=(--skip-offgrid); fi
"${bench[@]}"
rc=$?
say "done in $(elapsed)s (budget ${BUDGET_S}s), bench exit $rc"
ls -l "$out"/summary.txt "$out"/accuracy_vs_macs.png "$out"/*.widths 2>/dev/null
[ -s "$out/summary.txt" ] || exit 1
exit 0
