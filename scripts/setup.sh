#!/usr/bin/env bash
# Installs the Debian packages septa needs (idempotent: does nothing when all are present).
set -euo pipefail
packages=(
  g++ cmake make liblbfgs-dev libgtest-dev libgmock-dev libbenchmark-dev
  python3-dev pybind11-dev python3-pytest python3-numpy python3-setuptools python3-wheel
  python3-pip python3-venv
  libtorch-dev libopenblas0-pthread dataset-fashion-mnist
  gnuplot-nox python3-sklearn
  libopenmpi-dev openmpi-bin
  zlib1g-dev libyaml-cpp-dev
  libsentencepiece-dev
  clang-14 libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "septa setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
