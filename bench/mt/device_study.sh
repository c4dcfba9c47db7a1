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
# Sized from a time budget: BUDGET_S (default 300) is the wall time this script may take (the
# caller's timeout less a margin). Unless PRETRAIN_EPOCHS is given, the script picks the training
# pairs per direction and the pre-training epochs so that its time model (below; STEP_MS per
# training step, per-model, dev-decoding, merging and evaluation costs) stays under 75% of it;
# the plan and its estimate are on the log. Every knob below can be overridden from the
# environment; MT_TINY=1 shrinks the run to a CPU smoke test of a minute.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 BUILD_DIR CORPUS_DIR OUT_DIR" >&2; exit 2; }
build=$1 corpus=$2 out=$3

# ---- knobs ------------------------------------------------------------------------------------
if [ "${MT_TINY:-0}" = 1 ]; then  # smoke test: seconds per model on a CPU
  : "${DEVICE:=cpu}" "${DIM:=32}" "${FF:=64}" "${HEADS:=2}" "${LAYERS:=1}" "${MAX_TRAIN:=200}"
  : "${PRETRAIN_EPOCHS:=1}" "${POST_EPOCHS:=1}" "${BATCH:=64}" "${WARMUP:=10}" "${TEST_LIMIT:=40}"
  : "${DEV_SAMPLE:=10}" "${THREADS:=2}" "${POST_MAX_TRAIN:=0}"
fi
DEVICE=${DEVICE:-cuda}
BUDGET_S=${BUDGET_S:-300}             # wall seconds this script may take
STEP_MS=${STEP_MS:-35}                # assumed milliseconds per training step: 27 Nov, H100 beside the Scala
                                      # bench, 10-12 s per epoch of 282 steps (about 40 ms) at d256 with
                                      # per-step device reads and per-tensor clipping and Adam (about 1,900
                                      # launches a step); now about 950 launches and one read a step, but
                                      # beside two Scala processes on the GPU (time-sliced contexts)
DIM=${DIM:-384}                       # transformer width (the CPU study: 128)
FF=${FF:-1536}                        # feed-forward width (CPU: 512)
HEADS=${HEADS:-6}
LAYERS=${LAYERS:-3}                   # encoder layers = decoder layers (CPU: 2)
MAX_LEN=${MAX_LEN:-48}                # tokens per message (longer ones are cut)
POST_EPOCHS=${POST_EPOCHS:-1}         # each post-training (multi 12, separate 12 x 1, group 12, DAT 6 directions)
POST_MAX_TRAIN=${POST_MAX_TRAIN:-4000} # pairs per direction of each post-training (0: all MAX_TRAIN; the CPU study: 1000)
BATCH=${BATCH:-256}                   # (CPU: 64)
LR=${LR:-0.0015}
POST_FRESH=${POST_FRESH:-1}           # 1: post-training on pairs after pre-training's MAX_TRAIN (unseen by the base; the
                                      # trimmed corpus holds 12,000 per language, so MAX_TRAIN <= 12,000 - POST_MAX_TRAIN)
POST_SELECT=${POST_SELECT:-100}       # dev messages per direction choosing each post-training's epoch (the base,
                                      # epoch 0, included; 0: keep the last epoch)
POST_LR=${POST_LR:-0.00015}           # a tenth of LR, as in the CPU runs with --post-lr 0.0002 (0.001 left every
                                      # post-training below its base)
WARMUP=${WARMUP:-300}
TEST_LIMIT=${TEST_LIMIT:-0}           # n-way test messages per direction (0: all 779 of the capped corpus)
DEV_SAMPLE=${DEV_SAMPLE:-100}         # dev messages per direction decoded after each epoch
DECODE_BATCH=${DECODE_BATCH:-800}     # messages decoded together (one batch per direction)
DENSITY=${DENSITY:-0.5}               # TIES
TF32=${TF32:-1}                       # TF32 matrix products on CUDA
TA_LAMBDA=${TA_LAMBDA:-0.5}           # task arithmetic
cores=$(nproc 2>/dev/null || echo 2)  # the cores this process may use (taskset)
THREADS=${THREADS:-$(( cores < 4 ? cores : 4 ))}  # CPU threads of libtorch's CPU ops
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
study=$WORK/study
log=$out/study.log
export OMP_WAIT_POLICY=passive

t0=$(date +%s.%N)
since() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "[device_study +$(since)s] $*" | tee -a "$log"; }
: > "$log"

# The plan: pairs per direction P and pre-training epochs E from the time model
#   t(P, E) = 15 s (start, tokenizer, encoding) + 1.5 s per trained model (set-up, checkpoints)
#           + STEP_MS x (E x pre-training steps per epoch + post-training steps)
#           + 0.15 s per dev decoding of a direction (after every epoch of every model, and of
#             each post-training's base with POST_SELECT)
#           + 2 s per merge + 0.5 s per evaluated model + 0.25 s per decoded test direction,
# step counts from the corpus (stats.tsv's train column, at most the trimmed corpus's max-train,
# groups.txt); the largest P of 12000, 10000, 8000, 6000, 4000, 3000, 2000 whose largest E
# (at most EPOCHS_MAX) with t <= 0.75 BUDGET_S is at least EPOCHS_MIN, or 2000 and the largest E
# that fits. Given MAX_TRAIN fixes P; given PRETRAIN_EPOCHS fixes E (and then P = MAX_TRAIN or 8000).
EPOCHS_MIN=${EPOCHS_MIN:-6} EPOCHS_MAX=${EPOCHS_MAX:-10}
trim=$(sed -n 's/^max-train=//p' "$corpus/spm.options" 2>/dev/null || true)
plan=$(awk -F'\t' -v groups="$(cat "$corpus/groups.txt")" -v trim="${trim:-0}" -v b="$BATCH" \
    -v fixed_p="${MAX_TRAIN:-0}" -v fixed_e="${PRETRAIN_EPOCHS:-0}" -v po="$POST_EPOCHS" -v post="$POST_MAX_TRAIN" \
    -v dev="$DEV_SAMPLE" -v select="$POST_SELECT" -v fresh="$POST_FRESH" -v step_ms="$STEP_MS" -v budget="$BUDGET_S" -v emin="$EPOCHS_MIN" -v emax="$EPOCHS_MAX" '
  function up(x) { return int((x + b - 1) / b) }
  function seconds(P, E,   l, g, n, pp, pre, st, pairs, gp, L, G, models, decodes, cap) {
    pairs = 0; st = 0; L = 0
    for (l in avail) { cap = avail[l] - (fresh ? post : 0); n[l] = (cap < P) ? cap : P
                       pp[l] = fresh ? ((post < avail[l] - n[l]) ? post : avail[l] - n[l]) : ((post > 0 && post < n[l]) ? post : n[l])
                       pairs += 2 * n[l]; L++ }
    pre = E * up(pairs)
    gp = 0; for (l in pp) gp += 2 * pp[l]; st += up(gp)                    # multilingual
    for (l in pp) st += 2 * up(pp[l])                                      # separate, one per direction
    for (g = 0; g < G_count; ++g) { gp = 0; for (l in pp) if (group[l] == g) gp += pp[l]
                                    st += up(2 * gp) + up(gp) }            # group-wise, DAT En->X
    st *= po
    G = G_count; models = 2 + 2 * L + 2 * G
    decodes = (dev > 0) ? E * 2 * L + po * 7 * L : 0
    if (select > 0) decodes += 7 * L + (select != dev ? po * 7 * L : 0)  # each base, then each epoch
    return 15 + 1.5 * models + step_ms / 1000 * (pre + st) + 0.15 * decodes + 2 * 3 * G + 0.5 * (models + 3 * G) + 0.25 * 12 * L
  }
  NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "train") col = i; next }
  $col ~ /^[0-9]+$/ { avail[$1] = (trim > 0 && $col > trim) ? trim : $col }
  END {
    G_count = split(groups, gs, ";")
    for (g = 1; g <= G_count; ++g) { k = split(gs[g], ls, ","); for (j = 1; j <= k; ++j) group[ls[j]] = g - 1 }
    limit = 0.75 * budget
    if (post <= 0) fresh = 0                                      # post-training on all of the pre-training pairs
    mincap = -1; for (l in avail) { c = avail[l] - (fresh ? post : 0); if (mincap < 0 || c < mincap) mincap = c }
    np = split(fixed_p > 0 ? fixed_p : "12000 10000 8000 6000 4000 3000 2000", ps, " ")
    if (fixed_e > 0) { P = fixed_p > 0 ? fixed_p : 8000; E = fixed_e }
    else for (i = 1; i <= np; ++i) {
      P = ps[i]; E = 0
      if (P > mincap && i < np) continue                          # with POST_FRESH, pairs must be left over
      for (e = 1; e <= emax; ++e) if (seconds(P, e) <= limit) E = e
      if (E >= emin) break
    }
    if (E < 1) E = 1
    printf "%d %d %.0f %.1f\n", P, E, seconds(P, E), (seconds(P, E) - seconds(P, 0)) / E
  }' "$corpus/stats.tsv")
read -r MAX_TRAIN PRETRAIN_EPOCHS estimate per_epoch <<< "$plan"
say "device $DEVICE, budget ${BUDGET_S}s: dim $DIM ff $FF heads $HEADS layers $LAYERS batch $BATCH; $MAX_TRAIN pairs per direction, $PRETRAIN_EPOCHS pre-training epochs (about ${per_epoch}s each), post-training $POST_EPOCHS epoch(s) on at most ${POST_MAX_TRAIN} (0: all) pairs per direction (fresh: $POST_FRESH); estimated ${estimate}s at ${STEP_MS} ms per step"
[ "${PLAN_ONLY:-0}" = 1 ] && exit 0
rm -rf "$WORK"
mkdir -p "$WORK"

options=(--vocab "${vocab:-8000}" --dim "$DIM" --ff "$FF" --heads "$HEADS" --layers "$LAYERS" --max-len "$MAX_LEN"
  --max-train "$MAX_TRAIN" --pretrain-epochs "$PRETRAIN_EPOCHS" --post-epochs "$POST_EPOCHS"
  --post-max-train "$POST_MAX_TRAIN" --post-fresh "$POST_FRESH" --post-select "$POST_SELECT" --batch "$BATCH"
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
