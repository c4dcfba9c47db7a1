#include "merge/task_vectors.h"

#include <algorithm>
#include <cstring>

#include "merge/methods.h"
#include "merge/simd.h"

namespace septa::merge {

namespace {

constexpr std::size_t kBlock = kMixBlock;
constexpr std::size_t kHigh = 1u << 15;  // buckets of |d|'s bits 30..16
constexpr std::size_t kLow = 1u << 16;   // buckets of bits 15..0

// dst[len] <- entries [begin, begin + len) of `op` as float32.
inline void load(const Operand& op, std::size_t begin, std::size_t len, float* dst) {
  const auto* bytes = static_cast<const unsigned char*>(op.data) + begin * safetensors::dtype_size(op.dtype);
  safetensors::to_f32(op.dtype, bytes, len, dst);
}

// d[len] = x - b and bits[len] = |d|'s float bits (ordered like |d|, NaN above infinity).
SEPTA_MERGE_CLONES void delta_block(const float* x, const float* b, float* d, std::uint32_t* bits,
                                    std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) {
    const float v = x[i] - b[i];
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    d[i] = v;
    bits[i] = u & 0x7FFFFFFFu;
  }
}

// The trim of one task vector: entries with bits > threshold stay, and of those with bits ==
// threshold the first `ties_kept` in index order (trim_to_top_k's rule).
struct Trim {
  bool active = false;
  std::uint32_t threshold = 0;
  std::size_t ties_kept = 0;
  std::size_t ties_seen = 0;  // ties met so far in the streaming pass
};

SEPTA_MERGE_CLONES std::size_t count_equal(const std::uint32_t* bits, std::uint32_t value, std::size_t len) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < len; ++i) count += bits[i] == value;
  return count;
}

SEPTA_MERGE_CLONES void keep_at_least(float* d, const std::uint32_t* bits, std::uint32_t t, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) d[i] = bits[i] >= t ? d[i] : 0.0f;
}

SEPTA_MERGE_CLONES void keep_above(float* d, const std::uint32_t* bits, std::uint32_t t, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i) d[i] = bits[i] > t ? d[i] : 0.0f;
}

void apply_trim(Trim& trim, float* d, const std::uint32_t* bits, std::size_t len) {
  const std::size_t ties = count_equal(bits, trim.threshold, len);
  if (trim.ties_seen + ties <= trim.ties_kept) {
    keep_at_least(d, bits, trim.threshold, len);
  } else if (trim.ties_seen >= trim.ties_kept) {
    keep_above(d, bits, trim.threshold, len);
  } else {  // the last kept tie is in this block
    for (std::size_t i = 0; i < len; ++i) {
      if (bits[i] > trim.threshold) continue;
      if (bits[i] == trim.threshold && trim.ties_seen++ < trim.ties_kept) continue;
      d[i] = 0.0f;
    }
    return;  // (ties_seen counted entry by entry)
  }
  trim.ties_seen += ties;
}

}  // namespace

// TIES's trim threshold (the k-th largest |d|) by exact radix selection on the float bits of
// |d| (ordered like |d|), streaming twice over the inputs:
//   pass 1: histogram H of bits >> 16; walking down from the top bucket, the boundary bucket B
//           is the one where the running count first reaches k; need = k - (count above B);
//   pass 2: histogram L of bits & 0xFFFF over entries in bucket B; walking down the same way
//           gives the exact threshold T = B << 16 | j, and how many entries equal to T stay.
// Pass 3 then computes the deltas once more, trims, drops (DARE) and mixes block by block.
// Counts are integers, so they do not depend on blocking or on thread count.
void merge_task_vectors(const Operand& base, const std::vector<TaskVectorInput>& inputs,
                        const TaskVectorOptions& options, std::size_t n,
                        safetensors::Dtype out_dtype, void* out, TaskVectorScratch& scratch) {
  const std::size_t m = inputs.size();
  scratch.blocks.resize((m + 3) * kBlock);
  float* b = scratch.blocks.data();             // [kBlock] base
  float* o = b + kBlock;                        // [kBlock] output
  auto* bits = reinterpret_cast<std::uint32_t*>(o + kBlock);  // [kBlock]
  float* d0 = o + 2 * kBlock;                   // [m][kBlock] task vectors
  const std::size_t out_size = safetensors::dtype_size(out_dtype);

  std::vector<Trim> trims(m);
  std::vector<std::size_t> trimmed;  // models whose trim drops something
  if (options.trim)
    for (std::size_t t = 0; t < m; ++t)
      if (inputs[t].keep < n) trimmed.push_back(t);

  if (!trimmed.empty()) {
    const std::size_t r = trimmed.size();
    scratch.high.assign(r * kHigh, 0);
    for (std::size_t begin = 0; begin < n; begin += kBlock) {
      const std::size_t len = std::min(kBlock, n - begin);
      load(base, begin, len, b);
      for (std::size_t j = 0; j < r; ++j) {
        load(inputs[trimmed[j]].values, begin, len, d0);
        delta_block(d0, b, d0, bits, len);
        std::uint32_t* h = scratch.high.data() + j * kHigh;
        for (std::size_t i = 0; i < len; ++i) ++h[bits[i] >> 16];
      }
    }
    std::vector<std::uint32_t> bucket(r);
    std::vector<std::size_t> need(r);
    for (std::size_t j = 0; j < r; ++j) {
      const std::uint32_t* h = scratch.high.data() + j * kHigh;
      const std::size_t k = inputs[trimmed[j]].keep;
      if (k == 0) {  // nothing stays: every |d| is above the threshold "none"
        trims[trimmed[j]] = {true, 0xFFFFFFFFu, 0, 0};
        continue;
      }
      std::size_t above = 0;
      std::uint32_t bk = kHigh - 1;
      while (above + h[bk] < k) above += h[bk--];
      bucket[j] = bk;
      need[j] = k - above;  // 1..h[bk]
    }
    scratch.low.assign(r * kLow, 0);
    for (std::size_t begin = 0; begin < n; begin += kBlock) {
      const std::size_t len = std::min(kBlock, n - begin);
      load(base, begin, len, b);
      for (std::size_t j = 0; j < r; ++j) {
        if (inputs[trimmed[j]].keep == 0) continue;
        load(inputs[trimmed[j]].values, begin, len, d0);
        delta_block(d0, b, d0, bits, len);
        std::uint32_t* l = scratch.low.data() + j * kLow;
        const std::uint32_t bk = bucket[j];
        for (std::size_t i = 0; i < len; ++i)
          if ((bits[i] >> 16) == bk) ++l[bits[i] & 0xFFFF];
      }
    }
    for (std::size_t j = 0; j < r; ++j) {
      if (inputs[trimmed[j]].keep == 0) continue;
      const std::uint32_t* l = scratch.low.data() + j * kLow;
      std::size_t greater = 0;
      std::uint32_t lo = kLow - 1;
      while (greater + l[lo] < need[j]) greater += l[lo--];
      trims[trimmed[j]] = {true, bucket[j] << 16 | lo, need[j] - greater, 0};
    }
  }

  std::vector<float> weights(m);
  std::vector<const float*> deltas(m);
  for (std::size_t t = 0; t < m; ++t) {
    weights[t] = inputs[t].weight;
    deltas[t] = d0 + t * kBlock;
  }
  const float total = mix_total_weight(weights.data(), m);
  auto* dst = static_cast<unsigned char*>(out);
  for (std::size_t begin = 0; begin < n; begin += kBlock) {
    const std::size_t len = std::min(kBlock, n - begin);
    load(base, begin, len, b);
    for (std::size_t t = 0; t < m; ++t) {
      float* d = d0 + t * kBlock;
      load(inputs[t].values, begin, len, d);
      delta_block(d, b, d, bits, len);
      if (trims[t].active) apply_trim(trims[t], d, bits, len);
      if (options.dare)
        dare_drop_and_rescale_range(d, begin, len, inputs[t].density, options.seed, inputs[t].stream);
    }
    mix_block(b, deltas.data(), weights.data(), m, options.consensus, options.normalize, options.lambda,
              total, o, len);
    safetensors::from_f32(out_dtype, o, len, dst + begin * out_size);
  }
}

}  // namespace septa::merge
