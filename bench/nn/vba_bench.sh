#!/usr/bin/env bash
# The variational backdoor adjustment bench (docs/vba.md): the linear-Gaussian protocol at
# d = 1, 5, 10, 20 (N = 50,000, 1,000 held out, K = 100; in and out of distribution), then the
# Fashion-MNIST composite. Not part of the test suite. Usage:
#   bench/nn/vba_bench.sh [BUILD_DIR] [extra options for every run...]
# Environment: DIMS="1 5 10 20", N=50000, COMPOSITE_N=20000, SKIP_COMPOSITE=1, THREADS=2.
set -euo pipefail
build=${1:-build}
shift || true
septa_nn="$build/septa-nn"
threads=${THREADS:-2}
n=${N:-50000}
start=$(date +%s)
for d in ${DIMS:-1 5 10 20}; do
  echo "== linear-Gaussian d=$d"
  "$septa_nn" vba bench --dims "$d" --n "$n" --test-n 1000 --k 100 --threads "$threads" \
    --with-joint "$@" | grep -v '^\['
done
if [ -z "${SKIP_COMPOSITE:-}" ]; then
  echo "== Fashion-MNIST composite"
  "$septa_nn" vba bench --kind fashion-composite --n "${COMPOSITE_N:-20000}" --threads "$threads" \
    --hidden 400 --prior-latent 50 --prior-hidden 400 --iwae-k 10 --epochs 5 --finetune-epochs 1 \
    "$@" | grep -v '^\[.*epoch [0-9]*/[0-9]* ' || true
fi
echo "total wall time: $(( $(date +%s) - start )) s"
