#!/usr/bin/env bash
# Builds the self-contained corpus folder that bench/mt/device_study.sh takes to a GPU machine
# (which has neither Debian's translation catalogs nor sentencepiece's tools): the six languages
# and three groups from this machine's .mo catalogs, split by source package, plus the shared
# sentencepiece model trained here. Never part of the test suite.
#
#   bench/mt/make_device_corpus.sh OUT
#
# Knobs (environment): SEPTA_NN (default build/septa-nn), GROUPS_SPEC (default "de,fr,es;ru;ja,zh_CN"),
# VOCAB (pieces, default 8000), MAX_TRAIN (pairs per direction the tokenizer sees; keep it equal
# to device_study.sh's MAX_TRAIN, default 12000), SEED (default 1).
# OUT gets the corpus (groups.txt, <lang>.{train,dev,test}.tsv, test.nway.tsv, stats.tsv),
# spm.model and spm.options (the options it was trained with). It must stay under 20 MB: the
# training files keep only the MAX_TRAIN pairs per language the study uses (TRIM=0: all).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
here=$(cd "$(dirname "$0")/../.." && pwd)
septa=${SEPTA_NN:-$here/build/septa-nn}
out=$1
groups=${GROUPS_SPEC:-"de,fr,es;ru;ja,zh_CN"}
vocab=${VOCAB:-8000}
max_train=${MAX_TRAIN:-12000}
seed=${SEED:-1}
[ -x "$septa" ] || { echo "$0: $septa missing (build septa-nn with -DSEPTA_WITH_TORCH=ON)" >&2; exit 2; }

start=$SECONDS
echo "== corpus: $groups -> $out"
nice "$septa" mt build-corpus --corpus "$out" --groups "$groups" --seed "$seed" | grep -v '^skipped'
echo "== sentencepiece: $vocab pieces on each language's $max_train-pair training subset"
nice "$septa" mt tokenizer --corpus "$out" --out "$out/spm.model" --vocab "$vocab" --max-train "$max_train" \
  --seed "$seed"
printf 'vocab=%s\nmax-train=%s\nseed=%s\n' "$vocab" "$max_train" "$seed" > "$out/spm.options"
rm -f "$out"/*.vocab
# Each <lang>.train.tsv keeps only the MAX_TRAIN pairs a study with that --max-train and --seed
# trains on (study.cc's subset(): the smallest seeded FNV-1a hash of the English message), in
# that order, so the study sees the same pairs in the same order as on the whole file and the
# folder stays small. stats.tsv still counts the whole corpus.
if [ "${TRIM:-1}" = 1 ] && [ "$max_train" -gt 0 ]; then
  python3 - "$out" "$max_train" "$seed" <<'PY'
import glob, sys
out, limit, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
M = (1 << 64) - 1
def fnv(data):  # over the bytes, as study.cc hashes them
    h = 1469598103934665603 ^ seed
    for c in data:
        h = ((h ^ c) * 1099511628211) & M
    return h
for path in sorted(glob.glob(out + "/*.train.tsv")):
    lines = open(path, "rb").read().split(b"\n")[:-1]
    keyed = sorted((fnv(line.split(b"\t")[1]), i) for i, line in enumerate(lines))[:limit]
    open(path, "wb").write(b"".join(lines[i] + b"\n" for _, i in keyed))
    print("%s: %d of %d training pairs kept" % (path, len(keyed), len(lines)))
PY
  echo "trimmed=1" >> "$out/spm.options"
fi
size_kb=$(du -sk "$out" | cut -f1)
echo "== $out: ${size_kb} KB, $((SECONDS - start)) s"
column -t "$out/stats.tsv" 2>/dev/null || cat "$out/stats.tsv"
if [ "$size_kb" -ge 20480 ]; then
  echo "$0: $out is ${size_kb} KB, over the 20 MB a device run may carry" >&2
  exit 1
fi
