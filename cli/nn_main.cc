// septa-nn: the neural modules' command line, reached as "septa nn ...".
#include <dlfcn.h>

#include <cstdlib>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "commands.h"

namespace {

/*
 * Process-wide settings for training with libtorch on the CPU, made once before anything runs.
 *
 * BLAS threads. Debian's libtorch calls OpenBLAS (openblas-pthread) for its matrix products;
 * OpenBLAS keeps a thread pool of its own, one thread per core, beside libtorch's OpenMP threads
 * (`--threads`), and its idle threads spin in sched_yield. On this 2-core machine the MT study's
 * training made 390,000 sched_yield calls in 25 s and spent as much system time as user time.
 * The matrix products therefore run on the calling thread (openblas_set_num_threads(1), looked
 * up at run time so that another BLAS needs nothing); libtorch's threads still share the rest.
 * OPENBLAS_NUM_THREADS, when set, is left to OpenBLAS.
 *
 * Heap. Every training step allocates and frees the same buffers, some above any mmap threshold
 * (logits and their gradient, [B][T][V] floats: 64 x 48 x 4000 x 4 = 49 MB); glibc returned them
 * to the system (munmap, heap trimming) and the next step faulted them in again, page by page:
 * 2.1 million minor faults for 94 pre-training steps. The heap now serves every size (no mmap),
 * keeps up to 1 GiB of free memory and grows in 64 MiB steps, so a step reuses the last one's
 * pages. Measured by bench/mt/runtime_ab.sh (docs/mt.md, "Throughput"), medians of 3: user +
 * system 27.3 -> 21.9 s, system 10.8 -> 5.6 s, minor faults 2.25 -> 0.99 million. The heap
 * settings alone leave the model bit-identical; one BLAS thread changes the products' rounding.
 */
void tune_cpu_runtime() {
#ifdef __GLIBC__
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) {
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  tune_cpu_runtime();
  return septa::cli::run_nn(argc, argv);
}
