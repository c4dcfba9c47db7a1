// The task-vector merges (task arithmetic, TIES, DARE linear/TIES) of one tensor in a single
// fused kernel working straight on the stored bytes (F16, BF16, F32, F64): blocks of entries are
// converted to float32 in L1, never whole tensors. Its result is bit for bit that of the
// reference steps in methods.h applied to whole float32 tensors:
//   d_t = theta_t - theta_base; trim_to_top_k(d_t, keep_t) (TIES);
//   dare_drop_and_rescale(d_t, density_t, seed, stream_t) (DARE); mix_task_vectors(...);
//   then rounding to the output dtype.
// Every entry's value depends only on the inputs, so neither blocking nor threads change it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "safetensors/dtype.h"

namespace septa::merge {

// The stored values of one tensor: `dtype` (F64, F32, F16, BF16) at `data`, any alignment.
struct Operand {
  safetensors::Dtype dtype = safetensors::Dtype::kF32;
  const void* data = nullptr;
};

struct TaskVectorInput {
  Operand values;              // theta_t: [n]
  float weight = 1.0f;         // w_t
  std::size_t keep = 0;        // TIES: entries the trim keeps (>= n: no trim)
  double density = 1.0;        // DARE: keep probability (>= 1: no drop)
  std::uint64_t stream = 0;    // DARE: dare_stream(tensor, model index)
};

struct TaskVectorOptions {
  bool trim = false;       // TIES's magnitude trim (uses keep)
  bool dare = false;       // DARE's random drop (uses density, stream, seed)
  bool consensus = false;  // TIES's sign election
  bool normalize = false;
  float lambda = 1.0f;
  std::uint64_t seed = 0;
  // TIES: tensors of at least this many entries (and >= kSampleRuns x kSampleRun) find their
  // trim thresholds from a sample's bracket (task_vectors.cc); smaller ones by full histograms.
  // Either way the bytes are the same; tests lower it to reach both paths on small tensors.
  std::size_t sample_from = std::size_t{1} << 16;
};

// The sample of a TIES bracket: kSampleRuns runs of kSampleRun consecutive entries, run j
// starting at j * (n - kSampleRun) / (kSampleRuns - 1).
constexpr std::size_t kSampleRuns = 64;
constexpr std::size_t kSampleRun = 64;

// An entry of a model's TIES boundary bucket, set aside by the streaming pass.
struct Pending {
  std::uint64_t index;
  float raw;           // d before the trim
  std::uint32_t bits;  // |d|'s float bits
};

// Buffers one thread reuses across tensors (histograms, blocks, set-aside entries).
struct TaskVectorScratch {
  std::vector<std::uint32_t> high;  // [m][4][2^15] counts of |d|'s float bits 30..16
  std::vector<std::uint32_t> low;   // [m][2^16] counts of bits 15..0 inside the boundary bucket
  std::vector<std::uint32_t> sample;                // [kSampleRuns * kSampleRun] |d|'s float bits
  std::vector<std::vector<std::uint32_t>> inside;   // [m][<= n / 4 + kBlock] |d|'s bits inside the bracket
  std::vector<float> blocks;        // [m + 5][kBlock]
  std::size_t brackets = 0;         // trims that used a sample's bracket (cumulative)
  std::size_t bracket_misses = 0;   // of those, the ones that fell back to the full histogram
  std::vector<std::vector<Pending>> pending;  // [m] entries in the boundary bucket
  std::vector<std::uint64_t> patch_index;     // positions with a set-aside entry
  std::vector<float> patch_values;            // [positions][m + 1]
};

// Whether the TIES bracket pass may use AVX2 (the default, where the CPU has it); both paths
// give the same counts. Returns the previous setting (for tests).
bool set_bracket_simd(bool enabled);

// out[n] (of `out_dtype`) = base + mixed task vectors, as described above.
void merge_task_vectors(const Operand& base, const std::vector<TaskVectorInput>& inputs,
                        const TaskVectorOptions& options, std::size_t n,
                        safetensors::Dtype out_dtype, void* out, TaskVectorScratch& scratch);

}  // namespace septa::merge
