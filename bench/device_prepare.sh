#!/usr/bin/env bash
# Fills .dev/ (git-ignored) with what bench/device_run.sh needs on the GPU machine, which has no
# Debian packages and no network: the CRF binaries built here (glibc 2.36, so they run on the
# machine's newer one), the headers and shared libraries of liblbfgs, zlib, yaml-cpp and
# sentencepiece for building the neural modules there, CoNLL-2000/2003 (xz), Fashion-MNIST, and
# the translation corpus when one is given. Then the device tool runs, with carry [".dev"]:
#   bash bench/device_run.sh "$OUT"
#   bench/device_prepare.sh [BUILD_DIR (default build-dev)] [MT_CORPUS_DIR]
set -euo pipefail
build=${1:-build-dev} corpus=${2:-}
data=${SEPTA_DATA:-../shared/data}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSEPTA_WITH_TORCH=OFF -DSEPTA_WITH_MPI=OFF \
  -DSEPTA_BUILD_TESTS=OFF -DSEPTA_BUILD_PYTHON=OFF > /dev/null
cmake --build "$build" -j"$(nproc)" --target septa crf_bench > /dev/null
exclude="$(git rev-parse --git-common-dir)/info/exclude"
grep -qx '/.dev/' "$exclude" 2>/dev/null || echo '/.dev/' >> "$exclude"
rm -rf .dev
lib=/usr/lib/x86_64-linux-gnu dlib=.dev/deps/lib/x86_64-linux-gnu
mkdir -p .dev/deps/include "$dlib/cmake" .dev/bin .dev/data/fashion-mnist
cp -a /usr/include/lbfgs.h /usr/include/zlib.h /usr/include/zconf.h /usr/include/sentencepiece_processor.h \
  /usr/include/sentencepiece_trainer.h /usr/include/yaml-cpp .dev/deps/include/
cp -a "$lib"/liblbfgs.so* "$lib"/libyaml-cpp.so* "$lib"/libsentencepiece.so* "$lib"/libsentencepiece_train.so* "$dlib/"
cp -aL "$lib/libz.so" "$dlib/libz.so"
cp -a "$lib/cmake/yaml-cpp" "$dlib/cmake/"
cp "$build/septa" "$build/crf_bench" .dev/bin/
cp /usr/share/datasets/fashion-mnist/*.gz .dev/data/fashion-mnist/
tar cJf .dev/data/conll.tar.xz -C "$data" conll2000 conll2003
[ -z "$corpus" ] || cp -r "$corpus" .dev/mt-corpus
du -sh .dev
