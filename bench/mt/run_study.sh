#!/usr/bin/env bash
# The translation study on this machine's translation catalogs (never part of the test suite):
# builds the corpus, trains every setting, merges, evaluates and analyses, chooses the decoding's
# copy bonus and EOS penalty on dev and evaluates the test set with them too, logging to
# OUT/study.log (each step's start and end time) and the septa commands' output to OUT/*.log.
# Usage:
#   bench/mt/run_study.sh [OUT] [extra study options...]
# e.g. GROUPS_SPEC="de,fr;ru" bench/mt/run_study.sh /tmp/mt-study --max-train 4000
# Extra options override the plan's and septa nn mt's defaults (the CPU study of docs/mt.md: six
# languages in three groups, twelve directions). RESUME=1 continues an interrupted run (with the
# same options: a resumed run needs them).
#
# The plan is fixed (no calibration: a half-minute calibration on this shared machine measured
# 0.298 and 0.146 s a step three minutes apart): MAX_TRAIN pairs per direction + 2 MAX_TRAIN
# English copies, PRETRAIN_EPOCHS pre-training epochs. The defaults (10,000 pairs, 10 epochs:
# 2,188 steps an epoch, 21,880 in all) are sized from the 27 Nov study's measured rate, 0.146 s
# a step at --threads 2 with the study's session given priority: about 53 min of pre-training,
# and about 16 min for the rest (post-training side by side on 6,000 fresh pairs per direction,
# 2 epochs: 626 s measured on 27 Nov; merges, the test evaluations and the dev choice with the
# key/value cache: about 5 min), about 70 min in all, leaving 20 min of the 90 for a slower machine.
#
# Both cores, reproducibly: every step runs with a fixed thread count, so its results do not
# depend on how the jobs are scheduled (libtorch's reductions differ between 1 and 2 threads,
# so the thread count of each step is part of the plan):
#   the tokenizer and the pre-training      one process, --threads 2   (train --part 0/2)
#   the 19 post-trainings                   two processes, --threads 1 each (train --part 1/2, 2/2:
#                                           a fixed split; every model has its own seeded generator)
#   merges, test evaluations                one process, --threads 2
#   the dev choice's evaluations            two at a time, --threads 1 each
# With sched_autogroup_enabled=1 (this machine) nice values act only within a session;
# `echo -15 > /proc/PID/autogroup` (root) for this script gives the study's session priority.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
septa=${SEPTA:-$here/build/septa}
out=${1:-/tmp/septa-mt-study}
shift || true
groups=${GROUPS_SPEC:-"de,fr,es;ru;ja,zh_CN"}
MAX_TRAIN=${MAX_TRAIN:-10000}          # pre-training pairs per direction
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-10}
COPY_PAIRS=${COPY_PAIRS:-$((2 * MAX_TRAIN))}
POST_MAX_TRAIN=6000                    # pairs per direction of each post-training (below), fresh
COPY_BONUS_GRID=${COPY_BONUS_GRID:-"0 0.5 1 2"}  # --copy-bonus values scored on dev ("": no choice)
EOS_GRID=${EOS_GRID:-"0.5 1"}          # then --eos-penalty values (besides 0) with the chosen bonus
DEV_CHOICE=${DEV_CHOICE:-100}          # dev messages per direction of that choice
TOKENIZER=${TOKENIZER:-}               # a shared spm.model to reuse (septa nn mt train --tokenizer)
mkdir -p "$out"
log=$out/study.log
study=$out/study
: > "$log"
start=$SECONDS
say() { echo "$(date -u +%H:%M:%S) +$((SECONDS - start))s $*" | tee -a "$log"; }
say "run_study.sh $out $*"
[ -f "$out/corpus/test.nway.tsv" ] || "$septa" nn mt build-corpus --corpus "$out/corpus" --groups "$groups" \
  | grep -v '^skipped' > "$out/corpus.log"
export OMP_WAIT_POLICY=passive
resume=(); [ "${RESUME:-0}" = 1 ] && resume=(--resume)
tok=(); [ -n "$TOKENIZER" ] && tok=(--tokenizer "$TOKENIZER")
options=(--max-train "$MAX_TRAIN" --copy-pairs "$COPY_PAIRS" --pretrain-epochs "$PRETRAIN_EPOCHS"
  --post-max-train "$POST_MAX_TRAIN" --post-fresh 1 --post-epochs 2 --post-lr 0.0002 --post-select 100 "$@")
mt() { "$septa" nn mt "$1" --corpus "$out/corpus" --dir "$study" "${@:2}" "${options[@]}"; }
say "corpus built; septa nn mt train --corpus $out/corpus --dir $study ${tok[*]} ${options[*]} (plan: $MAX_TRAIN pairs per direction + $COPY_PAIRS copies, $PRETRAIN_EPOCHS pre-training epochs)"
mt train --part 0/2 --threads 2 "${resume[@]}" "${tok[@]}" > "$out/train.0.log" 2>&1
say "tokenizer and pre-training done ($(grep -c '^\[pretrain\] epoch' "$out/train.0.log") epochs)"
pids=()
for part in 1 2; do
  mt train --part "$part/2" --threads 1 "${resume[@]}" > "$out/train.$part.log" 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
say "post-training done"
mt merge --threads 2 > "$out/merge.log" 2>&1
say "merges done"
mt eval --threads 2 > "$out/eval.bonus0.eos0.log" 2>&1
"$septa" nn mt analyse --dir "$study" > /dev/null
cp "$study/results.tsv" "$study/results.bonus0.tsv"
cp "$study/analysis.md" "$study/analysis.bonus0.md"
say "test evaluation (no decoding options) done"
if [ -z "$COPY_BONUS_GRID" ]; then say "study done"; exit 0; fi
# The decoding options, chosen on dev: the mean chrF of every setting (copy excluded) and
# direction on DEV_CHOICE dev messages per direction, the smallest of the best: first the copy
# bonus (EOS penalty 0), then the EOS penalty with that bonus. Each evaluation's table is its
# standard output (OUT/dev.bonusB.eosE.tsv); two run side by side. The test set is then scored with
# the chosen pair as well; results.tsv / analysis.md hold its scores, *.bonus0.* those without.
dev_eval() {  # copy bonus, EOS penalty: the table into $out/dev.bonus$1.eos$2.tsv
  mt eval --threads 1 --eval-dev "$DEV_CHOICE" --copy-bonus "$1" --eos-penalty "$2" \
    > "$out/dev.bonus$1.eos$2.tsv" 2> "$out/dev.bonus$1.eos$2.err"
}
dev_mean() {  # the mean dev chrF of a table (its rows: setting, direction, model, chrF, BLEU)
  awk -F'\t' 'NF == 5 && $1 != "setting" && $1 != "copy" { s += $4; n++ } END { printf "%.3f", s / n }' \
    "$out/dev.bonus$1.eos$2.tsv"
}
side_by_side() {  # pairs "bonus:eos" ..., two at a time
  local running=() item
  for item in "$@"; do
    dev_eval "${item%%:*}" "${item##*:}" &
    running+=($!)
    if [ ${#running[@]} = 2 ]; then wait "${running[0]}" "${running[1]}"; running=(); fi
  done
  for pid in "${running[@]}"; do wait "$pid"; done
}
better() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
items=(); for b in $COPY_BONUS_GRID; do items+=("$b:0"); done
side_by_side "${items[@]}"
best=0 best_eos=0 best_chrf=-1
for b in $COPY_BONUS_GRID; do
  chrf=$(dev_mean "$b" 0)
  say "dev choice: --copy-bonus $b --eos-penalty 0: mean dev chrF $chrf"
  if better "$chrf" "$best_chrf"; then best=$b best_chrf=$chrf; fi
done
items=(); for e in $EOS_GRID; do items+=("$best:$e"); done
side_by_side "${items[@]}"
for e in $EOS_GRID; do
  chrf=$(dev_mean "$best" "$e")
  say "dev choice: --copy-bonus $best --eos-penalty $e: mean dev chrF $chrf"
  if better "$chrf" "$best_chrf"; then best_eos=$e best_chrf=$chrf; fi
done
say "dev choice: --copy-bonus $best --eos-penalty $best_eos (mean dev chrF $best_chrf)"
if [ "$best" != 0 ] || [ "$best_eos" != 0 ]; then
  mt eval --threads 2 --copy-bonus "$best" --eos-penalty "$best_eos" > "$out/eval.bonus$best.eos$best_eos.log" 2>&1
  "$septa" nn mt analyse --dir "$study" > /dev/null
  say "test evaluation with --copy-bonus $best --eos-penalty $best_eos done"
fi
say "study done: wall $((SECONDS - start)) s"
