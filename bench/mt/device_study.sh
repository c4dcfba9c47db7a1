#!/usr/bin/env bash
# The whole multilingual translation study on a GPU machine, in one process: pre-training on all
# twelve directions, then multilingual, separate, group-wise and DAT post-training, the group-wise
# X->En merges (TIES, linear, task arithmetic: DATM), evaluation on the n-way test set and the
# analysis (tables and the plot of multilingual - separate per direction). Never part of the
# test suite.
#
#   bench/mt/device_study.sh BUILD_DIR CORPUS_DIR OUT_DIR
#
# BUILD_DIR holds septa-nn and septa-spm (built with -DSEPTA_WITH_TORCH=ON against a CUDA
# libtorch; septa-spm must find libsentencepiece, e.g. through LD_LIBRARY_PATH). CORPUS_DIR is
# bench/mt/make_device_corpus.sh's folder (corpus + spm.model: no sentencepiece training and no
# spm_* tools here). OUT_DIR gets at most 8 files: analysis.md, results.tsv, models.tsv,
# deltas.dat, deltas.png, study.log, timing.txt and, where Python's sacrebleu is installed,
# sacrebleu.tsv (our chrF / BLEU against sacreBLEU's on the same hypotheses). The models stay in
# $WORK (default /tmp/septa-mt-device).
#
# Sized to finish within 240 s on one H100 (see docs/mt.md, "GPU study"). Every knob below can be
# overridden from the environment; MT_TINY=1 shrinks the run to a CPU smoke test of a minute.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 BUILD_DIR CORPUS_DIR OUT_DIR" >&2; exit 2; }
build=$1 corpus=$2 out=$3

# ---- knobs ------------------------------------------------------------------------------------
if [ "${MT_TINY:-0}" = 1 ]; then  # smoke test: seconds per model on a CPU
  : "${DEVICE:=cpu}" "${DIM:=32}" "${FF:=64}" "${HEADS:=2}" "${LAYERS:=1}" "${MAX_TRAIN:=200}"
  : "${PRETRAIN_EPOCHS:=1}" "${POST_EPOCHS:=1}" "${BATCH:=64}" "${WARMUP:=10}" "${TEST_LIMIT:=40}"
  : "${DEV_SAMPLE:=10}" "${THREADS:=2}"
fi
DEVICE=${DEVICE:-cuda}
DIM=${DIM:-256}                       # transformer width (the CPU study: 128)
FF=${FF:-1024}                        # feed-forward width (CPU: 256)
HEADS=${HEADS:-4}
LAYERS=${LAYERS:-3}                   # encoder layers = decoder layers (CPU: 2)
MAX_LEN=${MAX_LEN:-48}                # tokens per message (longer ones are cut)
MAX_TRAIN=${MAX_TRAIN:-12000}         # training pairs per direction (12 directions; the CPU study: 2500)
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-5} # on all 12 x MAX_TRAIN pairs (CPU: 3)
POST_EPOCHS=${POST_EPOCHS:-1}         # each post-training (multi 12, separate 12 x 1, group 12, DAT 6 x MAX_TRAIN)
POST_MAX_TRAIN=${POST_MAX_TRAIN:-0}   # pairs per direction of each post-training (0: all MAX_TRAIN; the CPU study: 1000)
BATCH=${BATCH:-256}                   # (CPU: 64)
LR=${LR:-0.002}
POST_LR=${POST_LR:-0.001}
WARMUP=${WARMUP:-200}
TEST_LIMIT=${TEST_LIMIT:-600}         # n-way test messages per direction (0: all)
DEV_SAMPLE=${DEV_SAMPLE:-100}         # dev messages per direction decoded after each epoch
DECODE_BATCH=${DECODE_BATCH:-300}     # messages decoded together
DENSITY=${DENSITY:-0.5}               # TIES
TF32=${TF32:-1}                       # TF32 matrix products on CUDA
TA_LAMBDA=${TA_LAMBDA:-0.5}           # task arithmetic
THREADS=${THREADS:-2}                 # CPU threads (bench/device_run.sh gives this script 2 cores)
SEED=${SEED:-1}
WORK=${WORK:-/tmp/septa-mt-device}
# -----------------------------------------------------------------------------------------------

septa=$build/septa-nn
[ -x "$septa" ] || { echo "$0: $septa missing (build septa-nn with -DSEPTA_WITH_TORCH=ON)" >&2; exit 2; }
[ -x "$build/septa-spm" ] && export SEPTA_SPM=${SEPTA_SPM:-$build/septa-spm}
for f in groups.txt test.nway.tsv stats.tsv spm.model; do
  [ -f "$corpus/$f" ] || { echo "$0: $corpus/$f missing (make it with bench/mt/make_device_corpus.sh)" >&2; exit 2; }
done
vocab=$(sed -n 's/^vocab=//p' "$corpus/spm.options" 2>/dev/null || true)
mkdir -p "$out"
rm -rf "$WORK"
mkdir -p "$WORK"
study=$WORK/study
log=$out/study.log
export OMP_WAIT_POLICY=passive

t0=$(date +%s.%N)
since() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "[device_study +$(since)s] $*" | tee -a "$log"; }
: > "$log"

# Planned work, from the corpus's training pair counts (stats.tsv's train column).
plan=$(awk -F'\t' -v m="$MAX_TRAIN" -v b="$BATCH" -v pe="$PRETRAIN_EPOCHS" -v po="$POST_EPOCHS" '
  NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "train") col = i; next }
  $col ~ /^[0-9]+$/ { n = (m > 0 && $col > m) ? m : $col; pairs += 2 * n; into_en += n; langs++ }
  END {
    steps = pe * int((pairs + b - 1) / b)                                    # pre-training
    post = po * (3 * pairs + into_en) / b                                     # multi, group, separate, DAT (about)
    printf "%d languages, %d training pairs over all directions; about %d pre-training and %d post-training steps", langs, pairs, steps, post
  }' "$corpus/stats.tsv")
say "device $DEVICE: dim $DIM ff $FF heads $HEADS layers $LAYERS batch $BATCH max-train $MAX_TRAIN epochs $PRETRAIN_EPOCHS+$POST_EPOCHS"
say "$plan"

options=(--vocab "${vocab:-8000}" --dim "$DIM" --ff "$FF" --heads "$HEADS" --layers "$LAYERS" --max-len "$MAX_LEN"
  --max-train "$MAX_TRAIN" --pretrain-epochs "$PRETRAIN_EPOCHS" --post-epochs "$POST_EPOCHS"
  --post-max-train "$POST_MAX_TRAIN" --batch "$BATCH"
  --lr "$LR" --post-lr "$POST_LR" --warmup "$WARMUP" --test-limit "$TEST_LIMIT" --dev-sample "$DEV_SAMPLE"
  --decode-batch "$DECODE_BATCH" --tf32 "$TF32" --density "$DENSITY" --ta-lambda "$TA_LAMBDA" --seed "$SEED")
say "septa-nn mt all --corpus $corpus --dir $study --tokenizer $corpus/spm.model --device $DEVICE --threads $THREADS ${options[*]}"

# One process: the CUDA context and the tokenizer are set up once. Every epoch prints a line.
set +e
"$septa" mt all --corpus "$corpus" --dir "$study" --tokenizer "$corpus/spm.model" --device "$DEVICE" \
  --threads "$THREADS" "${options[@]}" 2>&1 | while IFS= read -r line; do
    echo "[+$(since)s] $line"
  done | tee -a "$log"
status=${PIPESTATUS[0]}
set -e
say "septa-nn mt all exited with $status"
[ "$status" = 0 ] || exit "$status"

for f in analysis.md results.tsv models.tsv deltas.dat deltas.png; do
  [ -f "$study/$f" ] && cp "$study/$f" "$out/"
done
if [ ! -f "$out/deltas.png" ]; then  # no gnuplot on the machine: the same bars with matplotlib
  python3 - "$out/deltas.dat" "$out/deltas.png" <<'EOF' || say "no plot: neither gnuplot nor matplotlib"
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [line.split("\t") for line in open(sys.argv[1]) if line.strip()]
names = [r[1] for r in rows]
deltas = [float(r[2]) for r in rows]
colors = ["#3366cc" if r[3].strip() == "0" else "#dd7722" for r in rows]
fig, ax = plt.subplots(figsize=(9, 4.2))
ax.bar(range(len(rows)), deltas, color=colors)
ax.axhline(0, color="black", linewidth=0.8)
ax.set_xticks(range(len(rows)))
ax.set_xticklabels(names, rotation=45, ha="right")
ax.set_ylabel("chrF: multilingual - separate")
ax.set_title("synergy (> 0) / conflict (< 0) per direction; X->En blue, En->X orange")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
EOF
fi

# Our chrF and BLEU against sacreBLEU's on the same hypotheses, where sacrebleu is installed.
if python3 -c "import sacrebleu" 2>/dev/null; then
  python3 - "$study" "$out/sacrebleu.tsv" <<'EOF' | tee -a "$log" || say "sacrebleu check failed"
import os, sys
import sacrebleu
study, target = sys.argv[1], sys.argv[2]
lines = lambda p: open(p, encoding="utf-8").read().split("\n")[:-1]
out = ["setting\tdirection\tchrF\tsacrebleu_chrF\tBLEU\tsacrebleu_BLEU_13a"]
worst = (0.0, 0.0)
for row in open(os.path.join(study, "results.tsv")).read().splitlines()[1:]:
    setting, direction, model, chrf, bleu = row.split("\t")
    source, target_language = direction.split("-")
    ref = lines(os.path.join(study, "hypotheses", "ref.%s.txt" % target_language))
    if model == "-":
        hyp = lines(os.path.join(study, "hypotheses", "ref.%s.txt" % source))
    else:
        hyp = lines(os.path.join(study, "hypotheses", "%s.%s.txt" % (model.rsplit(".", 1)[0].replace("/", "_"), direction)))
    c = sacrebleu.corpus_chrf(hyp, [ref]).score
    b = sacrebleu.corpus_bleu(hyp, [ref], tokenize="13a").score
    worst = (max(worst[0], abs(c - float(chrf))), max(worst[1], abs(b - float(bleu))))
    out.append("%s\t%s\t%s\t%.2f\t%s\t%.2f" % (setting, direction, chrf, c, bleu, b))
open(target, "w").write("\n".join(out) + "\n")
print("sacrebleu %s: largest |ours - sacrebleu| over %d rows: chrF %.3f, BLEU %.3f"
      % (sacrebleu.__version__, len(out) - 1, worst[0], worst[1]))
EOF
fi

sed 's/^\[+[0-9.]*s\] //' "$log" | grep -E '^\[[A-Za-z0-9_.-]+\] epoch' > "$out/timing.txt" || true
awk '{ for (i = 1; i < NF; ++i) if ($i == "epoch") { n[$1]++; } s[$1] += $NF + 0 }
     END { for (k in s) total += s[k]; printf "training epochs together: %.1f s\n", total }' "$out/timing.txt" \
  | tee -a "$out/timing.txt"
say "done: $(ls "$out" | tr '\n' ' ')"
