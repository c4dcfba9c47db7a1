#include "merge/methods.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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
  std::vector<std::size_t> histogram(4096, 0);
  for (std::size_t i = 0; i < n; ++i) ++histogram[magnitude_bits(d[i]) >> kShift];
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
  std::size_t greater = 0;
  for (const std::uint32_t bits : candidates) greater += bits > threshold;
  std::size_t ties_left = need - greater;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t bits = magnitude_bits(d[i]);
    if (bits > threshold) continue;
    if (bits == threshold && ties_left > 0) {
      --ties_left;
      continue;
    }
    d[i] = 0.0f;
  }
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
  if (density >= 1.0) return;
  const std::uint64_t key = splitmix64(seed ^ stream);
  // keep entry i when u_i < density, u_i = top 32 bits of a hash of (key, i) / 2^32
  const std::uint64_t threshold = static_cast<std::uint64_t>(std::ldexp(std::max(density, 0.0), 32));
  const float p = static_cast<float>(density);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t u = splitmix64(key + 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(i)) >> 32;
    d[i] = u < threshold ? d[i] / p : 0.0f;
  }
}

void mix_task_vectors(const float* base, const std::vector<const float*>& deltas,
                      const std::vector<float>& weights, bool consensus, bool normalize,
                      float lambda, float* out, std::size_t n) {
  const std::size_t m = deltas.size();
  if (!consensus) {
    float divisor = 0.0f;
    for (const float w : weights) divisor += w;
    if (std::fabs(divisor) < 1e-8f) divisor = 1.0f;
    for (std::size_t i = 0; i < n; ++i) {
      float mixed = 0.0f;
      for (std::size_t t = 0; t < m; ++t) mixed += weights[t] * deltas[t][i];
      if (normalize) mixed /= divisor;
      if (lambda != 1.0f) mixed *= lambda;
      out[i] = base[i] + mixed;
    }
    return;
  }
  for (std::size_t i = 0; i < n; ++i) {
    float sum = 0.0f;
    for (std::size_t t = 0; t < m; ++t) sum += weights[t] * deltas[t][i];
    const bool positive = sum >= 0.0f;
    float mixed = 0.0f, divisor = 0.0f;
    for (std::size_t t = 0; t < m; ++t) {
      const float wd = weights[t] * deltas[t][i];
      if (positive ? wd > 0.0f : wd < 0.0f) {
        mixed += wd;
        divisor += weights[t];
      }
    }
    if (divisor == 0.0f) divisor = 1.0f;
    if (normalize) mixed /= divisor;
    if (lambda != 1.0f) mixed *= lambda;
    out[i] = base[i] + mixed;
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
