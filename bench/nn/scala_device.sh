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
# Steps: (1) a calibration run (a few batches of the teacher and of a Scala step) measures the
# seconds per step; (2) the number of epochs is the largest that fits BUDGET_S (EPOCHS=auto);
# (3) scala_bench.sh trains vit-separate, scala, usnet and scala with eps = 1/8 (the off-grid
# check at r = 0.4375), then writes the reports, summary and plot.
# Every knob below can be set from the environment, e.g. BUDGET_S=180 DIM=128 bench/nn/...
# TINY=1 is a CPU smoke test of the whole script at toy size (about a minute on 2 cores).
set -uo pipefail

BUDGET_S=${BUDGET_S:-240}       # whole script, wall seconds, calibration and reports included
RESERVE_S=${RESERVE_S:-60}      # kept for process start-ups, the four width reports and the plot
DEVICE=${DEVICE:-cuda}          # cuda | cpu | auto
DIM=${DIM:-192}                 # ViT width D (every grid width r D must be a multiple of HEADS)
DEPTH=${DEPTH:-6}               # transformer blocks
HEADS=${HEADS:-4}
PATCH=${PATCH:-4}               # 4: 49 tokens (+ cls and dist) on 28 x 28 images
BATCH=${BATCH:-256}
LR=${LR:-0.001}                 # AdamW peak learning rate (cosine schedule)
LR_WARMUP=${LR_WARMUP:-1}       # epochs of learning-rate warm-up
WARMUP_EPOCHS=${WARMUP_EPOCHS:-0}  # Scala / US-Net: first epochs of the full width alone
TEACHER=${TEACHER:-0}           # 1: Scala / US-Net distil the full width from separate's r = 1 ViT
PAD=${PAD:-2}                   # random-crop padding (0: none)
FLIP=${FLIP:-1}                 # random horizontal flips
EPOCHS=${EPOCHS:-auto}          # a number, or auto: the most that fit BUDGET_S
EPOCHS_MIN=${EPOCHS_MIN:-1}
EPOCHS_MAX=${EPOCHS_MAX:-30}
LIMIT=${LIMIT:-0}               # training images (0: all 60000)
TEST_LIMIT=${TEST_LIMIT:-0}     # test images (0: all 10000)
OFFGRID=${OFFGRID:-1}           # 1: also train scala with eps = 1/8 for the off-grid check
THREADS=${THREADS:-2}           # torch CPU threads per process (device_run.sh gives it 2 cores)
JOBS=${JOBS:-1}                 # trainings at once (1: what the calibration assumes)
CAL_BATCHES=${CAL_BATCHES:-40}  # batches per calibration epoch
SEED=${SEED:-1}
if [ "${TINY:-0}" = 1 ]; then   # CPU smoke test of every step at toy size
  DEVICE=${TINY_DEVICE:-cpu} DIM=32 DEPTH=1 HEADS=2 PATCH=7 BATCH=64 LIMIT=1024 TEST_LIMIT=300
  BUDGET_S=${TINY_BUDGET_S:-120} RESERVE_S=${TINY_RESERVE_S:-40} CAL_BATCHES=4 THREADS=2 LR=0.003
  LR_WARMUP=0.5
fi

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

recipe="--heads $HEADS --patch $PATCH --batch $BATCH --lr $LR --lr-warmup $LR_WARMUP --pad $PAD --flip $FLIP --seed $SEED"

# (1) Calibration: teacher epochs time a dense full-width step; Scala's second epoch (the first
# is its full-width warm-up) times a sandwich step with the teacher's forward.
n_train=$LIMIT; [ "$n_train" = 0 ] && n_train=60000
if [ "$EPOCHS" = auto ]; then
  cal_n=$(( CAL_BATCHES * BATCH )); [ $cal_n -gt $n_train ] && cal_n=$n_train
  say "calibration: $cal_n images, 2 teacher epochs and 2 scala epochs"
  "$septa" train --method scala --dim $DIM --depth $DEPTH $recipe --epochs 2 --teacher-epochs 2 --warmup-epochs 1 \
      --limit $cal_n --test-limit 500 --data "$data" --device "$DEVICE" --threads $THREADS \
      --seed $SEED > "$out/calibration.log" 2>&1
  rc=$?
  cat "$out/calibration.log"
  if [ $rc -ne 0 ]; then say "calibration failed (exit $rc): see $out/calibration.log"; exit 1; fi
  EPOCHS=$(python3 - "$out/calibration.log" $cal_n $n_train $OFFGRID $BUDGET_S $RESERVE_S $(elapsed) $EPOCHS_MIN $EPOCHS_MAX <<'PY'
import re, sys
log, cal_n, n, offgrid, budget, reserve, spent, lo, hi = sys.argv[1], *map(float, sys.argv[2:])
t = {}
for line in open(log):
    m = re.match(r"\[(\w+)\] epoch (\d+)/\d+ .* ([0-9.]+)s$", line.strip())
    if m: t[(m.group(1), int(m.group(2)))] = float(m.group(3))
# Epoch times are printed to 0.1 s: floor them (a sandwich step holds a full-width step, and
# costs at most about 4 of them).
scala = max(t[("scala", 2)], 0.1) * n / cal_n              # one sandwich epoch (+ teacher forward)
full = max(t[("teacher", 2)] * n / cal_n, scala / 4)       # one dense full-width epoch
# separate: 4 ViTs, each at most a full-width epoch (launch-bound on a GPU); scala, usnet
# (and scala eps = 1/8) a sandwich epoch each.
per_epoch = 4 * full + (2 + offgrid) * scala
left = budget - reserve - spent
e = int(max(lo, min(hi, left // per_epoch)))
print("calibration: full-width epoch %.1fs, scala epoch %.1fs, all methods %.1fs per epoch; "
      "%.0fs left -> %d epochs (about %.0fs of training)" % (full, scala, per_epoch, left, e, e * per_epoch),
      file=sys.stderr)
print(e)
PY
)
  [ -n "$EPOCHS" ] || { say "calibration could not be read"; exit 1; }
fi
say "training $EPOCHS epochs per method"

# (2) + (3): the bench itself (training, width reports, summary, plot).
bench=("$here/scala_bench.sh" --build "$build" --out "$out" --data "$data" --limit $LIMIT
       --test-limit $TEST_LIMIT --epochs $EPOCHS --dim $DIM --depth $DEPTH --threads $THREADS --jobs $JOBS --teacher $TEACHER
       --device "$DEVICE" --options "$recipe" --slim-options "--warmup-epochs $WARMUP_EPOCHS")
[ "$OFFGRID" = 1 ] || bench+=(--skip-offgrid)
"${bench[@]}"
rc=$?
say "done in $(elapsed)s (budget ${BUDGET_S}s), bench exit $rc"
ls -l "$out"/summary.txt "$out"/accuracy_vs_macs.png "$out"/*.widths 2>/dev/null
[ -s "$out/summary.txt" ] || exit 1
exit 0
