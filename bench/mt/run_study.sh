#!/usr/bin/env bash
# The translation study on this machine's translation catalogs (never part of the test suite):
# builds the corpus, sizes the pre-training from a time budget, trains every setting, merges,
# evaluates and analyses, chooses the decoding's copy bonus and EOS penalty on dev and evaluates
# the test set with them too, logging to OUT/study.log. Usage:
#   bench/mt/run_study.sh [OUT] [extra study options...]
# e.g. GROUPS_SPEC="de,fr;ru" bench/mt/run_study.sh /tmp/mt-study --max-train 4000
# Extra options override the sized ones and septa nn mt's defaults (the CPU study of docs/mt.md:
# six languages in three groups, twelve directions); --resume continues an interrupted run (give
# PRETRAIN_EPOCHS and MAX_TRAIN as before: a resumed run needs the same options). Timed by
# /usr/bin/time -v (wall and CPU seconds on the log).
#
# Sizing (unless PRETRAIN_EPOCHS is set): a calibration run (`mt train` on 500 pairs per
# direction, one pre-training epoch of 94 steps, in OUT/calibrate) measures the wall seconds of a
# pre-training step s on this machine as it is now. The rest of the study (post-training of the
# 19 models with their dev selection, the merges, the test evaluation, the copy bonus's dev
# evaluations and its second test evaluation) is taken as REST_STEPS steps' time (10,000: the
# 27 Nov CPU run spent about 2,300 steps' time on post-training and 1,600 on the test evaluation;
# the dev choice adds five dev and one test evaluation, about 3.5 test evaluations' worth). The
# pre-training then gets E epochs of P pairs per direction (+ 2P English copies) with
#   60 s + E x steps(P) x s + REST_STEPS x s <= BUDGET_S,
# P the largest of 10000 8000 6000 5000 with E >= 8 (at most 16), or 5000 and the E that fits.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
septa=${SEPTA:-$here/build/septa}
out=${1:-/tmp/septa-mt-study}
shift || true
groups=${GROUPS_SPEC:-"de,fr,es;ru;ja,zh_CN"}
BUDGET_S=${BUDGET_S:-4800}             # wall seconds of the whole study (80 minutes)
REST_STEPS=${REST_STEPS:-10000}        # the study after pre-training, in pre-training steps' time
BATCH=64                               # septa nn mt's default batch
POST_MAX_TRAIN=1000                    # pairs per direction of each post-training (below), fresh
COPY_BONUS_GRID=${COPY_BONUS_GRID:-"0 0.5 1 2"}  # --copy-bonus values scored on dev ("": no choice)
EOS_GRID=${EOS_GRID:-"0.5"}              # then --eos-penalty values (besides 0) with the chosen bonus
DEV_CHOICE=${DEV_CHOICE:-100}          # dev messages per direction of that choice
TOKENIZER=${TOKENIZER:-}               # a shared spm.model to reuse (septa nn mt train --tokenizer)
mkdir -p "$out"
log=$out/study.log
[ -f "$out/corpus/test.nway.tsv" ] || nice "$septa" nn mt build-corpus --corpus "$out/corpus" --groups "$groups" \
  | grep -v '^skipped' | tee "$out/corpus.log"
export OMP_WAIT_POLICY=passive
tok=(); [ -n "$TOKENIZER" ] && tok=(--tokenizer "$TOKENIZER")
start=$SECONDS
if [ -z "${PRETRAIN_EPOCHS:-}" ]; then
  rm -rf "$out/calibrate"
  "$septa" nn mt train --corpus "$out/corpus" --dir "$out/calibrate" "${tok[@]}" --threads 2 --max-train 500 \
    --pretrain-epochs 1 --post-epochs 1 --post-max-train 20 > "$out/calibrate.log" 2>&1
  epoch_s=$(sed -n 's/^\[pretrain\] epoch 1\/1 .* \([0-9.]*\)s$/\1/p' "$out/calibrate.log")
  read -r MAX_TRAIN PRETRAIN_EPOCHS step_s per_epoch <<< "$(awk -F'\t' -v epoch_s="$epoch_s" -v b="$BATCH" \
      -v budget="$BUDGET_S" -v rest="$REST_STEPS" -v post="$POST_MAX_TRAIN" -v used="$((SECONDS - start))" '
    function up(x) { return int((x + b - 1) / b) }
    function steps(P,   l, n, pairs) { pairs = 0
      for (l in avail) { n = avail[l] - post; pairs += 2 * (n < P ? n : P) }
      return up(pairs + 2 * P) }
    NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "train") col = i; next }
    { avail[$1] = $col; calib += 2 * (($col < 500) ? $col : 500) }
    END {
      s = epoch_s / up(calib)
      left = budget - used - 60 - rest * s
      split("10000 8000 6000 5000", ps, " ")
      for (i = 1; i <= 4; ++i) { P = ps[i]; E = int(left / (steps(P) * s)); if (E >= 8) break }
      if (E > 16) E = 16
      if (E < 1) E = 1
      printf "%d %d %.4f %.0f\n", P, E, s, steps(P) * s
    }' "$out/corpus/stats.tsv")"
  COPY_PAIRS=$((2 * MAX_TRAIN))
  echo "sizing: budget ${BUDGET_S}s, calibration epoch ${epoch_s}s = ${step_s}s per step; $MAX_TRAIN pairs per direction + $COPY_PAIRS copies, $PRETRAIN_EPOCHS pre-training epochs of about ${per_epoch}s" | tee "$log"
else
  : "${MAX_TRAIN:=5000}" "${COPY_PAIRS:=$((2 * MAX_TRAIN))}"
  : > "$log"
fi
options=(--threads 2 --max-train "$MAX_TRAIN" --copy-pairs "$COPY_PAIRS" --pretrain-epochs "$PRETRAIN_EPOCHS"
  --post-max-train "$POST_MAX_TRAIN" --post-fresh 1 --post-epochs 2 --post-lr 0.0002 --post-select 100 "$@")
echo "septa nn mt all --corpus $out/corpus --dir $out/study ${tok[*]} ${options[*]}" | tee -a "$log"
/usr/bin/time -v "$septa" nn mt all --corpus "$out/corpus" --dir "$out/study" "${tok[@]}" "${options[@]}" 2>&1 \
  | tee -a "$log"
echo "study wall time (training, merges, test evaluation): $((SECONDS - start)) s" | tee -a "$log"
[ -n "$COPY_BONUS_GRID" ] || exit 0
# The decoding options, chosen on dev: the mean chrF of every setting (copy excluded) and
# direction on DEV_CHOICE dev messages per direction, the smallest of the best: first the copy
# bonus (EOS penalty 0), then the EOS penalty with that bonus. The test set is then scored with
# the chosen pair as well; results.tsv / analysis.md hold its scores, *.bonus0.* those without.
study=$out/study
cp "$study/results.tsv" "$study/results.bonus0.tsv"
cp "$study/analysis.md" "$study/analysis.bonus0.md"
best=0 best_eos=0 best_chrf=-1
dev_score() {  # copy bonus, EOS penalty -> mean dev chrF on stdout
  "$septa" nn mt eval --corpus "$out/corpus" --dir "$study" "${options[@]}" --eval-dev "$DEV_CHOICE" \
    --copy-bonus "$1" --eos-penalty "$2" >> "$log" 2>&1
  cp "$study/dev_results.tsv" "$study/dev_results.bonus$1.eos$2.tsv"
  awk -F'\t' 'NR > 1 && $1 != "copy" { s += $4; n++ } END { printf "%.3f", s / n }' "$study/dev_results.tsv"
}
better() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
for b in $COPY_BONUS_GRID; do
  chrf=$(dev_score "$b" 0)
  echo "dev choice: --copy-bonus $b --eos-penalty 0: mean dev chrF $chrf" | tee -a "$log"
  if better "$chrf" "$best_chrf"; then best=$b best_chrf=$chrf; fi
done
for e in $EOS_GRID; do
  chrf=$(dev_score "$best" "$e")
  echo "dev choice: --copy-bonus $best --eos-penalty $e: mean dev chrF $chrf" | tee -a "$log"
  if better "$chrf" "$best_chrf"; then best_eos=$e best_chrf=$chrf; fi
done
echo "dev choice: --copy-bonus $best --eos-penalty $best_eos (mean dev chrF $best_chrf)" | tee -a "$log"
if [ "$best" != 0 ] || [ "$best_eos" != 0 ]; then
  "$septa" nn mt eval --corpus "$out/corpus" --dir "$study" "${options[@]}" --copy-bonus "$best" \
    --eos-penalty "$best_eos" >> "$log" 2>&1
  "$septa" nn mt analyse --dir "$study" > /dev/null
fi
echo "study wall time (all, the dev choice included): $((SECONDS - start)) s" | tee -a "$log"
