#!/usr/bin/env bash
# Installs the CRF library (component crf_dev) from BUILD_DIR into a temporary prefix, builds the
# consumer project against it with find_package(septa), and checks the tags it prints. Then the
# README's `cmake --install build --prefix P` (every component): P/bin/septa runs from the PATH.
# usage: consumer_test.sh BUILD_DIR SOURCE_DIR CMAKE CXX
set -euo pipefail
build=$1; source=$2; cmake=$3; cxx=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$cmake" --install "$build" --component crf_dev --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/septa/crf/model.h"
test ! -e "$work/prefix/include/septa/crf/label_bias.h"
"$cmake" -S "$source/tests/package/consumer" -B "$work/build" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
"$cmake" --build "$work/build" > "$work/build.log"
tags=$("$work/build/consumer")
echo "consumer printed: $tags"
[ "$tags" = "B-NP I-NP B-VP " ]
"$cmake" --install "$build" --prefix "$work/all" > "$work/install_all.log"
version=$(PATH="$work/all/bin:/usr/bin:/bin" septa --version)
echo "installed: $version"
[[ "$version" == "septa "[0-9]* ]]
