#!/usr/bin/env bash
# One lease of the GPU machine (one H100, 16 cores; no Debian packages there), in one command:
#   1. the neural modules built against that machine's CUDA libtorch (PyTorch's), with the
#      Debian libraries they need carried in .dev/deps;
#   2. the GPU-size Scala bench and translation study on CUDA (bench/nn/scala_device.sh,
#      bench/mt/device_study.sh), side by side on the GPU with cores 8-11 and 12-15, while the
#      CRF thread-scaling table runs its 1-8 thread cells on cores 0-7;
#   3. the 16-thread CRF cells and separate training's 1-thread cells, alone on the machine,
#      and a stage profile of `septa train -a separate` at 16 threads.
# Knobs: DEVICE_BUDGET_S (whole script, default 560), DEVICE_GPU_S (the neural runs' share, at
# most; default 330), DEVICE_CRF_RESERVE_S (kept for step 3, default 120).
# Never part of the test suite. Prepared here by bench/device_prepare.sh, run on the device as
#   bash bench/device_run.sh "$OUT"
# Results (at most 8 files, as the device tool returns them): OUT/log.txt (environment, build,
# CRF tables), OUT/scala.tar.gz, OUT/mt.tar.gz.
set -u
out=${1:?usage: device_run.sh OUT}
root=$PWD dev=$PWD/.dev
start=$SECONDS
log=$out/log.txt
say() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - start))s] $*" | tee -a "$log"; }
budget=${DEVICE_BUDGET_S:-560}   # the call's limit, less the transfers
left() { echo $((budget - (SECONDS - start))); }

say "env: $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
{ nvidia-smi -L; g++ --version | head -1; cmake --version | head -1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
} >> "$log" 2>&1

mkdir -p /tmp/data && tar xJf "$dev/data/conll.tar.xz" -C /tmp/data
export SEPTA_DATA=/tmp/data

# --- 1. build -----------------------------------------------------------------------------
tdir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
deps=$dev/deps lib=$dev/deps/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$tdir/lib:$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
common_cfg=(-S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSEPTA_WITH_TORCH=ON
  -DSEPTA_BUILD_TESTS=OFF -DSEPTA_BUILD_BENCH=OFF -DSEPTA_BUILD_PYTHON=OFF
  -DLBFGS_INCLUDE_DIR=$deps/include -DLBFGS_LIBRARY=$lib/liblbfgs.so
  -DZLIB_INCLUDE_DIR=$deps/include -DZLIB_LIBRARY=$lib/libz.so -Dyaml-cpp_DIR=$lib/cmake/yaml-cpp
  -DSENTENCEPIECE_INCLUDE_DIR=$deps/include -DSENTENCEPIECE_LIBRARY=$lib/libsentencepiece.so
  -DSENTENCEPIECE_TRAIN_LIBRARY=$lib/libsentencepiece_train.so)
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
built=0
if [ -n "${DEVICE_SKIP_BUILD:-}" ]; then :
elif cmake "${gen[@]}" "${common_cfg[@]}" -DSEPTA_TORCH_DIR="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
     > /tmp/cfg.log 2>&1; then
  say "configured with PyTorch's Torch config"
else
  say "Torch config failed (tail below); naming libtorch directly"; tail -15 /tmp/cfg.log >> "$log"
  rm -rf build-gpu
  incs=$(python3 -c 'from torch.utils import cpp_extension as c; print(";".join(c.include_paths("cuda")))' 2>/dev/null \
      || python3 -c 'from torch.utils import cpp_extension as c; print(";".join(c.include_paths(cuda=True)))')
  libs="$tdir/lib/libtorch.so;$tdir/lib/libtorch_cpu.so;$tdir/lib/libtorch_cuda.so;$tdir/lib/libc10.so;$tdir/lib/libc10_cuda.so"
  cmake "${gen[@]}" "${common_cfg[@]}" "-DSEPTA_TORCH_INCLUDE_DIRS=$incs" "-DSEPTA_TORCH_LIBRARIES=$libs" \
    > /tmp/cfg.log 2>&1 || { say "configure failed"; tail -30 /tmp/cfg.log >> "$log"; }
fi
if [ -n "${DEVICE_SKIP_BUILD:-}" ]; then  # a dry run of the script's flow on a machine without CUDA
  say "build skipped"
elif [ -f build-gpu/CMakeCache.txt ]; then
  if timeout 300 cmake --build build-gpu -j"$(nproc)" --target septa-nn septa-spm -- -k 0 > /tmp/build.log 2>&1; then
    built=1; cp "$dev/bin/septa" build-gpu/septa; say "built septa-nn"
  else
    say "build failed:"; grep -m 40 -A 3 'error' /tmp/build.log >> "$log"; tail -5 /tmp/build.log >> "$log"
  fi
fi
if [ $built = 1 ]; then
  ./build-gpu/septa-nn --help > /dev/null 2>&1 || say "septa-nn --help failed"
fi

# --- 2. GPU runs beside the 1-8 thread CRF cells --------------------------------------------
gpu_pids=()
if [ $built = 1 ]; then
  export OMP_NUM_THREADS=4 OMP_WAIT_POLICY=passive THREADS=4
  gpu_limit=$(( $(left) - ${DEVICE_CRF_RESERVE_S:-120} ))
  [ $gpu_limit -gt "${DEVICE_GPU_S:-330}" ] && gpu_limit=${DEVICE_GPU_S:-330}
  if [ -x bench/nn/scala_device.sh ]; then
    mkdir -p /tmp/scala
    ( export BUDGET_S=$((gpu_limit - 25)); taskset -c 8-11 timeout "$gpu_limit" bash bench/nn/scala_device.sh build-gpu "$dev/data/fashion-mnist" /tmp/scala \
        > /tmp/scala/run.log 2>&1; echo "scala exit $?" >> /tmp/scala/run.log ) &
    gpu_pids+=($!); say "scala started (limit ${gpu_limit}s)"
  fi
  if [ -x bench/mt/device_study.sh ] && [ -d "$dev/mt-corpus" ]; then
    mkdir -p /tmp/mt
    ( export BUDGET_S=$((gpu_limit - 15)); taskset -c 12-15 timeout "$gpu_limit" bash bench/mt/device_study.sh build-gpu "$dev/mt-corpus" /tmp/mt \
        > /tmp/mt/run.log 2>&1; echo "mt exit $?" >> /tmp/mt/run.log ) &
    gpu_pids+=($!); say "mt started (limit ${gpu_limit}s)"
  fi
fi
unset OMP_NUM_THREADS THREADS
gpu_end=$((SECONDS + ${gpu_limit:-0}))
bench="$dev/bin/crf_bench --data /tmp/data --runs 1"
crf() {  # limit, then crf_bench arguments
  local limit=$1; shift
  [ -z "${DEVICE_SKIP_CRF:-}" ] || return 0
  [ "$(left)" -gt 30 ] || { say "skipped (time): $*"; return; }
  [ "$limit" -lt "$(left)" ] || limit=$(( $(left) - 10 ))
  if [ -n "${until:-}" ]; then  # a cell beside the GPU runs ends with them
    [ $((until - SECONDS)) -gt 20 ] || { say "skipped (GPU window over): $*"; return; }
    [ "$limit" -lt $((until - SECONDS)) ] || limit=$((until - SECONDS))
  fi
  say "crf_bench $*"
  timeout "$limit" $bench "$@" >> "$log" 2>&1 || say "exit $? (timeout $limit s?)"
}
pin="taskset -c 0-7" until=$gpu_end
if [ ${#gpu_pids[@]} -eq 0 ]; then pin="" until=""; fi
bench="$pin $bench"
crf 90 --tasks chunk,ner,pos --algorithms separate --threads 1,2,4,8
crf 170 --tasks chunk --algorithms lbfgs --threads 1,2,4,8
crf 120 --tasks ner --algorithms lbfgs --threads 2,4,8
crf 100 --tasks pos --algorithms lbfgs --threads 4,8
for p in "${gpu_pids[@]}"; do wait "$p"; done
say "GPU runs done"

# --- 3. alone on the machine ----------------------------------------------------------------
until=""
bench="$dev/bin/crf_bench --data /tmp/data --runs 1"
crf 100 --tasks chunk,ner,pos --algorithms separate,lbfgs --threads 16
crf 45 --tasks chunk,ner,pos --algorithms separate --threads 1
for t in 16 1; do  # stage profiles of septa train -a separate (chunk)
  [ "$(left)" -gt 25 ] || break
  say "stage profile, septa train -a separate --threads $t (chunk)"
  SEPTA_SGD_PROFILE=1 timeout 20 "$dev/bin/septa" train -q -a separate --threads $t -m /tmp/sep$t.model \
    /tmp/data/conll2000/train.txt 2>&1 | grep -E '^(stage|sgd profile: D|sgd profile:   T|trained)' >> "$log"
done
cmp -s /tmp/sep1.model /tmp/sep16.model && say "models at 1 and 16 threads: byte-identical"
# the previous schedule (8 mixes, 8 + 5 epochs) with today's code: the code's share of the change
crf 45 --tasks chunk,ner,pos --algorithms separate --threads 1,16 --set 'mixes=8;unary-epochs=8;epochs=5'

for d in scala mt; do
  [ -d /tmp/$d ] && tar czf "$out/$d.tar.gz" --exclude='*.safetensors' --exclude='*.pt' -C /tmp "$d"
done
say "done"
