#include "merge/methods.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "merge/simd.h"

namespace septa::merge {

namespace {

// |x|'s float bits: ordered like |x| for non-negative floats (NaN above infinity).
inline std::uint32_t magnitude_bits(float x) {
  std::uint32_t bits;
  std::memcpy(&bits, &x, 4);
  return bits & 0x7FFFFFFFu;
}

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

// Selection of the k-th largest magnitude by radix on the float bits: a 4096-bucket histogram
// of the top 12 bits finds the bucket holding it, nth_element inside that bucket finds the
// exact threshold T; entries above T stay, and of those equal to T the first (k - #above) stay.
void trim_to_top_k(float* d, std::size_t n, std::size_t k) {
  if (k >= n) return;
  if (k == 0) {
    std::fill(d, d + n, 0.0f);
    return;
  }
  constexpr int kShift = 19;  // bits 30..19: 12 bits, 4096 buckets
  // Four interleaved histograms: runs of equal buckets do not serialise on one counter.
  std::vector<std::size_t> partial(4 * 4096, 0), histogram(4096, 0);
  std::size_t i4 = 0;
  for (; i4 + 4 <= n; i4 += 4)
    for (std::size_t j = 0; j < 4; ++j) ++partial[j * 4096 + (magnitude_bits(d[i4 + j]) >> kShift)];
  for (; i4 < n; ++i4) ++partial[magnitude_bits(d[i4]) >> kShift];
  for (std::size_t b = 0; b < 4096; ++b)
    histogram[b] = partial[b] + partial[4096 + b] + partial[2 * 4096 + b] + partial[3 * 4096 + b];
  std::size_t above = 0;
  std::uint32_t bucket = 4095;
  while (above + histogram[bucket] < k) above += histogram[bucket--];
  std::vector<std::uint32_t> candidates;  // bits of the entries in the boundary bucket
  candidates.reserve(histogram[bucket]);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t bits = magnitude_bits(d[i]);
    if ((bits >> kShift) == bucket) candidates.push_back(bits);
  }
  const std::size_t need = k - above;  // 1..candidates.size()
  std::nth_element(candidates.begin(), candidates.begin() + (need - 1), candidates.end(),
                   std::greater<std::uint32_t>());
  const std::uint32_t threshold = candidates[need - 1];
  std::size_t greater = 0, equal = 0;
  for (const std::uint32_t bits : candidates) greater += bits > threshold, equal += bits == threshold;
  // Entries equal to the threshold stay up to index `cut` (just after the last tie kept).
  const std::size_t ties_kept = need - greater;
  std::size_t cut = n;
  if (ties_kept < equal) {
    std::size_t seen = 0;
    cut = 0;
    if (ties_kept > 0)
      for (std::size_t i = 0; i < n; ++i)
        if (magnitude_bits(d[i]) == threshold && ++seen == ties_kept) {
          cut = i + 1;
          break;
        }
  }
  // Two vectorisable passes: keep |d| >= T before the cut, |d| > T after it.
  for (std::size_t i = 0; i < cut; ++i) d[i] = magnitude_bits(d[i]) >= threshold ? d[i] : 0.0f;
  for (std::size_t i = cut; i < n; ++i) d[i] = magnitude_bits(d[i]) > threshold ? d[i] : 0.0f;
}

std::uint64_t dare_stream(std::string_view tensor_name, std::size_t model_index) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64 of the name
  for (const char c : tensor_name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return splitmix64(h ^ splitmix64(static_cast<std::uint64_t>(model_index)));
}

void dare_drop_and_rescale(float* d, std::size_t n, double density, std::uint64_t seed,
                           std::uint64_t stream) {
  dare_drop_and_rescale_range(d, 0, n, density, seed, stream);
}

void dare_drop_and_rescale_range(float* d, std::size_t begin, std::size_t len, double density,
                                 std::uint64_t seed, std::uint64_t stream) {
  if (density >= 1.0) return;
  const std::uint64_t key = splitmix64(seed ^ stream);
  // keep entry i when u_i < density, u_i = top 32 bits of a hash of (key, i) / 2^32
  const std::uint64_t threshold = static_cast<std::uint64_t>(std::ldexp(std::max(density, 0.0), 32));
  const float p = static_cast<float>(density);
  for (std::size_t j = 0; j < len; ++j) {
    const std::uint64_t i = begin + j;
    const std::uint64_t u = splitmix64(key + 0x9E3779B97F4A7C15ull * i) >> 32;
    d[j] = u < threshold ? d[j] / p : 0.0f;
  }
}

float mix_total_weight(const float* weights, std::size_t m) {
  float total = 0.0f;
  for (std::size_t t = 0; t < m; ++t) total += weights[t];
  return std::fabs(total) < 1e-8f ? 1.0f : total;
}

// Each loop runs over one model with selects instead of branches, so the compiler vectorises
// it; additions happen in model order. The x86-64-v3 clone (AVX2) gives the same bits: the
// file is compiled with -ffp-contract=off, so no multiply-add is fused.
namespace {

// mix_block for M models in one loop over the entries (the per-entry operations and their
// order are those of the general loops below, so the bits are the same).
template <std::size_t M>
inline void mix_fused(const float* base, const float* const* deltas, const float* weights, bool consensus,
                      bool normalize, float lambda, float total, float* out, std::size_t len) {
  const float* d[M];
  float w[M];
  for (std::size_t t = 0; t < M; ++t) d[t] = deltas[t], w[t] = weights[t];
  const bool scale = lambda != 1.0f;
  if (!consensus) {
    for (std::size_t i = 0; i < len; ++i) {
      float mixed = 0.0f;
      for (std::size_t t = 0; t < M; ++t) mixed += w[t] * d[t][i];
      mixed = normalize ? mixed / total : mixed;
      mixed = scale ? mixed * lambda : mixed;
      out[i] = base[i] + mixed;
    }
    return;
  }
  for (std::size_t i = 0; i < len; ++i) {
    float sum = 0.0f;
    for (std::size_t t = 0; t < M; ++t) sum += w[t] * d[t][i];
    const bool positive = sum >= 0.0f;
    float mixed = 0.0f, divisor = 0.0f;
    for (std::size_t t = 0; t < M; ++t) {
      const float wd = w[t] * d[t][i];
      const bool agree = ((wd > 0.0f) & positive) | ((wd < 0.0f) & !positive);
      mixed += agree ? wd : 0.0f;
      divisor += agree ? w[t] : 0.0f;
    }
    divisor = divisor == 0.0f ? 1.0f : divisor;
    mixed = normalize ? mixed / divisor : mixed;
    mixed = scale ? mixed * lambda : mixed;
    out[i] = base[i] + mixed;
  }
}

}  // namespace

SEPTA_MERGE_CLONES void mix_block(const float* base, const float* const* deltas, const float* weights,
                                  std::size_t m, bool consensus, bool normalize, float lambda,
                                  float total, float* out, std::size_t len) {
  switch (m) {
    case 1: return mix_fused<1>(base, deltas, weights, consensus, normalize, lambda, total, out, len);
    case 2: return mix_fused<2>(base, deltas, weights, consensus, normalize, lambda, total, out, len);
    case 3: return mix_fused<3>(base, deltas, weights, consensus, normalize, lambda, total, out, len);
    case 4: return mix_fused<4>(base, deltas, weights, consensus, normalize, lambda, total, out, len);
    default: break;
  }
  float sum[kMixBlock], mixed[kMixBlock], divisor[kMixBlock];
  std::fill(mixed, mixed + len, 0.0f);
  if (!consensus) {
    for (std::size_t t = 0; t < m; ++t) {
      const float w = weights[t];
      const float* d = deltas[t];
      for (std::size_t i = 0; i < len; ++i) mixed[i] += w * d[i];
    }
    std::fill(divisor, divisor + len, total);
  } else {
    std::fill(sum, sum + len, 0.0f);
    std::fill(divisor, divisor + len, 0.0f);
    for (std::size_t t = 0; t < m; ++t) {
      const float w = weights[t];
      const float* d = deltas[t];
      for (std::size_t i = 0; i < len; ++i) sum[i] += w * d[i];
    }
    for (std::size_t t = 0; t < m; ++t) {
      const float w = weights[t];
      const float* d = deltas[t];
      for (std::size_t i = 0; i < len; ++i) {
        const float wd = w * d[i];
        const bool positive = sum[i] >= 0.0f;
        const bool agree = ((wd > 0.0f) & positive) | ((wd < 0.0f) & !positive);
        mixed[i] += agree ? wd : 0.0f;
        divisor[i] += agree ? w : 0.0f;
      }
    }
    for (std::size_t i = 0; i < len; ++i) divisor[i] = divisor[i] == 0.0f ? 1.0f : divisor[i];
  }
  if (normalize)
    for (std::size_t i = 0; i < len; ++i) mixed[i] /= divisor[i];
  if (lambda != 1.0f)
    for (std::size_t i = 0; i < len; ++i) mixed[i] *= lambda;
  for (std::size_t i = 0; i < len; ++i) out[i] = base[i] + mixed[i];
}

void mix_task_vectors(const float* base, const std::vector<const float*>& deltas,
                      const std::vector<float>& weights, bool consensus, bool normalize,
                      float lambda, float* out, std::size_t n) {
  const std::size_t m = deltas.size();
  const float total = mix_total_weight(weights.data(), m);
  std::vector<const float*> block(m);
  for (std::size_t begin = 0; begin < n; begin += kMixBlock) {
    const std::size_t len = std::min(kMixBlock, n - begin);
    for (std::size_t t = 0; t < m; ++t) block[t] = deltas[t] + begin;
    mix_block(base + begin, block.data(), weights.data(), m, consensus, normalize, lambda, total,
              out + begin, len);
  }
}

void linear_combination(const std::vector<const float*>& xs, const std::vector<float>& weights,
                        bool normalize, float* out, std::size_t n) {
  float total = 0.0f;
  for (const float w : weights) total += w;
  for (std::size_t i = 0; i < n; ++i) {
    float sum = 0.0f;
    for (std::size_t t = 0; t < xs.size(); ++t) sum += weights[t] * xs[t][i];
    out[i] = normalize ? sum / total : sum;
  }
}

void slerp(double t, const float* v0, const float* v1, float* out, std::size_t n) {
  constexpr double kDotThreshold = 0.9995, kEps = 1e-8;
  double n0 = 0, n1 = 0, dot = 0;
  for (std::size_t i = 0; i < n; ++i) {
    n0 += static_cast<double>(v0[i]) * v0[i];
    n1 += static_cast<double>(v1[i]) * v1[i];
    dot += static_cast<double>(v0[i]) * v1[i];
  }
  n0 = std::sqrt(n0);
  n1 = std::sqrt(n1);
  if (n0 > kEps) dot /= n0;
  if (n1 > kEps) dot /= n1;
  double s0, s1;
  if (std::fabs(dot) > kDotThreshold) {
    s0 = 1.0 - t;
    s1 = t;
  } else {
    const double theta0 = std::acos(dot);
    const double sin_theta0 = std::sin(theta0);
    const double theta_t = theta0 * t;
    s0 = std::sin(theta0 - theta_t) / sin_theta0;
    s1 = std::sin(theta_t) / sin_theta0;
  }
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(s0 * v0[i] + s1 * v1[i]);
}

}  // namespace septa::merge
