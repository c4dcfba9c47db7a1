// The merge methods on hand-made vectors, against brute force and statistics.
#include "merge/methods.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace septa::merge {
namespace {

std::size_t nonzeros(const std::vector<float>& v) {
  return static_cast<std::size_t>(std::count_if(v.begin(), v.end(), [](float x) { return x != 0.0f; }));
}

TEST(Ties, TrimKeepsExactlyTheKLargestMagnitudes) {
  std::vector<float> d = {0.1f, -5.0f, 3.0f, -0.2f, 4.0f, 0.0f};
  trim_to_top_k(d.data(), d.size(), 3);
  EXPECT_EQ(d, (std::vector<float>{0, -5.0f, 3.0f, 0, 4.0f, 0}));
  // Ties at the k-th magnitude: the lowest indices stay, and exactly k entries remain.
  std::vector<float> tied = {1, -2, 2, -2, 0.5f, 2};
  trim_to_top_k(tied.data(), tied.size(), 2);
  EXPECT_EQ(tied, (std::vector<float>{0, -2, 2, 0, 0, 0}));
  std::vector<float> all = {1, 2};
  trim_to_top_k(all.data(), 2, 5);
  EXPECT_EQ(all, (std::vector<float>{1, 2}));
}

// Against a stable sort by descending magnitude, on data with many repeated magnitudes and
// magnitudes spread over many binades (so the radix buckets are exercised).
TEST(Ties, TrimMatchesStableSortOnRandomData) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t n = 1 + rng() % 3000;
    std::vector<float> d(n);
    for (auto& x : d) {
      const int kind = static_cast<int>(rng() % 3);
      x = kind == 0 ? static_cast<float>(static_cast<int>(rng() % 7) - 3)  // repeated values
          : kind == 1 ? std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng), static_cast<int>(rng() % 40) - 20)
                      : std::uniform_real_distribution<float>(-1e-3f, 1e-3f)(rng);
    }
    const std::size_t k = rng() % (n + 1);
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return std::fabs(d[a]) > std::fabs(d[b]); });
    std::vector<float> expected(n, 0.0f);
    for (std::size_t i = 0; i < k; ++i) expected[order[i]] = d[order[i]];
    std::vector<float> got = d;
    trim_to_top_k(got.data(), n, k);
    ASSERT_EQ(got, expected) << "n=" << n << " k=" << k;
    ASSERT_LE(nonzeros(got), k);
  }
}

TEST(Ties, ElectedSignIsTheSignOfTheWeightedSum) {
  // Entry 0: weighted sum 1*3 + 2*(-1) = 1 >= 0 -> +; only model 0 agrees: mixed 3, divisor 1.
  // Entry 1: 1*1 + 2*(-1) = -1 -> -; only model 1 agrees: mixed -2, divisor 2 -> -1.
  // Entry 2: both zero: nobody votes, divisor 0 -> 1, mixed 0.
  // Entry 3: 1*0 + 2*0.5 = 1 -> +; the zero of model 0 does not count: divisor 2, mixed 1 -> 0.5.
  // Entry 4: sum exactly 0 elects +: 1*2 + 2*(-1) = 0; model 0 agrees: 2 / 1.
  const std::vector<float> base = {10, 10, 10, 10, 10};
  const std::vector<float> d0 = {3, 1, 0, 0, 2};
  const std::vector<float> d1 = {-1, -1, 0, 0.5f, -1};
  std::vector<float> out(5);
  mix_task_vectors(base.data(), {d0.data(), d1.data()}, {1.0f, 2.0f}, /*consensus=*/true, /*normalize=*/true,
                   /*lambda=*/1.0f, out.data(), 5);
  EXPECT_EQ(out, (std::vector<float>{13, 9, 10, 10.5f, 12}));
  // Without normalize the divisor is not applied; lambda scales the mixed vector.
  mix_task_vectors(base.data(), {d0.data(), d1.data()}, {1.0f, 2.0f}, true, false, 0.5f, out.data(), 5);
  EXPECT_EQ(out, (std::vector<float>{11.5f, 9, 10, 10.5f, 11}));
  // A negative weight flips a model's vote: sign(w_t d_t) is what counts.
  mix_task_vectors(base.data(), {d0.data()}, {-1.0f}, true, true, 1.0f, out.data(), 5);
  // Normalised, the divisor is the (negative) weight itself, so base + d comes back.
  EXPECT_EQ(out, (std::vector<float>{13, 11, 10, 10, 12}));
}

// mix_task_vectors (fused loops for up to 4 models, general loops beyond) against the
// definition written per entry, bit for bit, with signed weights and many zero entries.
TEST(Ties, MixingEqualsThePerEntryDefinition) {
  std::mt19937 rng(17);
  for (int trial = 0; trial < 120; ++trial) {
    const std::size_t m = 1 + static_cast<std::size_t>(trial) % 6, n = 1 + rng() % 5000;
    const bool consensus = rng() % 2, normalize = rng() % 2;
    const float lambda = rng() % 2 ? 1.0f : 0.6f;
    std::vector<float> base(n), weights(m);
    std::vector<std::vector<float>> d(m, std::vector<float>(n));
    std::uniform_real_distribution<float> u(-1, 1);
    for (auto& b : base) b = u(rng);
    for (std::size_t t = 0; t < m; ++t) {
      weights[t] = rng() % 4 == 0 ? -0.75f : 0.25f * static_cast<float>(1 + rng() % 4);
      for (auto& x : d[t]) x = rng() % 3 == 0 ? 0.0f : u(rng);
    }
    std::vector<const float*> pointers;
    for (const auto& x : d) pointers.push_back(x.data());
    std::vector<float> out(n);
    mix_task_vectors(base.data(), pointers, weights, consensus, normalize, lambda, out.data(), n);
    float total = 0.0f;
    for (const float w : weights) total += w;
    if (std::fabs(total) < 1e-8f) total = 1.0f;
    for (std::size_t i = 0; i < n; ++i) {
      float sum = 0.0f;
      for (std::size_t t = 0; t < m; ++t) sum += weights[t] * d[t][i];
      const float elected = sum >= 0.0f ? 1.0f : -1.0f;
      float mixed = 0.0f, divisor = 0.0f;
      for (std::size_t t = 0; t < m; ++t) {
        const float wd = weights[t] * d[t][i];
        const float sign = wd > 0.0f ? 1.0f : wd < 0.0f ? -1.0f : 0.0f;
        if (!consensus || sign == elected) mixed += wd, divisor += weights[t];
      }
      if (!consensus) divisor = total;
      if (divisor == 0.0f) divisor = 1.0f;
      if (normalize) mixed /= divisor;
      if (lambda != 1.0f) mixed *= lambda;
      ASSERT_EQ(out[i], base[i] + mixed) << "m=" << m << " i=" << i;
    }
  }
}

TEST(TaskArithmetic, DivisorIsTheSumOfWeights) {
  const std::vector<float> base = {1, 2};
  const std::vector<float> d0 = {1, 1}, d1 = {3, -1};
  std::vector<float> out(2);
  mix_task_vectors(base.data(), {d0.data(), d1.data()}, {1.0f, 3.0f}, false, false, 1.0f, out.data(), 2);
  EXPECT_EQ(out, (std::vector<float>{11, 0}));
  mix_task_vectors(base.data(), {d0.data(), d1.data()}, {1.0f, 3.0f}, false, true, 1.0f, out.data(), 2);
  EXPECT_EQ(out, (std::vector<float>{3.5f, 1.5f}));
  // Weights summing to (nearly) 0: divisor 1.
  mix_task_vectors(base.data(), {d0.data(), d1.data()}, {1.0f, -1.0f}, false, true, 1.0f, out.data(), 2);
  EXPECT_EQ(out, (std::vector<float>{-1, 4}));
  // lambda = 0 returns the base.
  mix_task_vectors(base.data(), {d0.data(), d1.data()}, {1.0f, 3.0f}, false, false, 0.0f, out.data(), 2);
  EXPECT_EQ(out, base);
}

TEST(Linear, WeightedAverage) {
  const std::vector<float> a = {1, 2}, b = {3, 6};
  std::vector<float> out(2);
  linear_combination({a.data(), b.data()}, {1.0f, 3.0f}, true, out.data(), 2);
  EXPECT_EQ(out, (std::vector<float>{2.5f, 5}));
  linear_combination({a.data(), b.data()}, {1.0f, 3.0f}, false, out.data(), 2);
  EXPECT_EQ(out, (std::vector<float>{10, 20}));
}

TEST(Dare, SeededAndReproducible) {
  std::vector<float> d(1000, 1.0f);
  std::vector<float> a = d, b = d, c = d;
  dare_drop_and_rescale(a.data(), a.size(), 0.3, 42, dare_stream("w", 0));
  dare_drop_and_rescale(b.data(), b.size(), 0.3, 42, dare_stream("w", 0));
  dare_drop_and_rescale(c.data(), c.size(), 0.3, 43, dare_stream("w", 0));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::vector<float> other_model = d, other_tensor = d;
  dare_drop_and_rescale(other_model.data(), d.size(), 0.3, 42, dare_stream("w", 1));
  dare_drop_and_rescale(other_tensor.data(), d.size(), 0.3, 42, dare_stream("v", 0));
  EXPECT_NE(a, other_model);
  EXPECT_NE(a, other_tensor);
  for (const float x : a) EXPECT_TRUE(x == 0.0f || std::fabs(x - 1.0f / 0.3f) < 1e-6f);
  std::vector<float> kept = d;
  dare_drop_and_rescale(kept.data(), kept.size(), 1.0, 42, 0);
  EXPECT_EQ(kept, d);
}

// E[dare(d)] = d: for S seeds, entry i's average has standard deviation
// sigma_i = |d_i| sqrt((1 - p) / (p S)); every entry must lie within 5 sigma_i, and the mean
// over entries of (avg_i - d_i) / sigma_i (a standard normal times 1/sqrt(n)) within 5/sqrt(n).
// The seeds are fixed, so the test is deterministic; with independent draws it would fail with
// probability about n * 6e-7 < 1e-4.
TEST(Dare, ExpectationMatchesTheInput) {
  const double p = 0.3;
  const int seeds = 2000;
  const std::size_t n = 200;
  std::vector<float> d(n);
  for (std::size_t i = 0; i < n; ++i) d[i] = static_cast<float>(std::sin(1.0 + static_cast<double>(i))) * 2.0f;
  std::vector<double> sum(n, 0.0);
  std::size_t kept = 0;
  for (int s = 0; s < seeds; ++s) {
    std::vector<float> x = d;
    dare_drop_and_rescale(x.data(), n, p, static_cast<std::uint64_t>(s), dare_stream("layer.weight", 2));
    for (std::size_t i = 0; i < n; ++i) {
      sum[i] += x[i];
      kept += x[i] != 0.0f;
    }
  }
  double z_mean = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double sigma = std::fabs(d[i]) * std::sqrt((1 - p) / (p * seeds));
    const double z = (sum[i] / seeds - d[i]) / sigma;
    EXPECT_LT(std::fabs(z), 5.0) << "entry " << i;
    z_mean += z / n;
  }
  EXPECT_LT(std::fabs(z_mean), 5.0 / std::sqrt(static_cast<double>(n)));
  // The kept fraction: binomial(n * seeds, p), 5 sigma.
  const double total = static_cast<double>(n) * seeds;
  EXPECT_NEAR(static_cast<double>(kept) / total, p, 5 * std::sqrt(p * (1 - p) / total));
}

TEST(Slerp, EndpointsAndGeometry) {
  const std::vector<float> a = {1, 0, 0}, b = {0, 2, 0};
  std::vector<float> out(3);
  slerp(0.0, a.data(), b.data(), out.data(), 3);
  EXPECT_EQ(out, a);
  slerp(1.0, a.data(), b.data(), out.data(), 3);
  EXPECT_NEAR(out[1], 2.0f, 1e-6f);
  EXPECT_NEAR(out[0], 0.0f, 1e-6f);
  // Orthogonal: theta = pi/2, t = 0.5 -> sin(pi/4) (a + b).
  slerp(0.5, a.data(), b.data(), out.data(), 3);
  EXPECT_NEAR(out[0], std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(out[1], 2 * std::sqrt(0.5), 1e-6);
  // Nearly colinear (|dot| > 0.9995): linear interpolation of the originals.
  const std::vector<float> c = {2, 0.001f, 0};
  slerp(0.25, a.data(), c.data(), out.data(), 3);
  EXPECT_NEAR(out[0], 0.75 * 1 + 0.25 * 2, 1e-6);
  EXPECT_NEAR(out[1], 0.25 * 0.001, 1e-9);
}

}  // namespace
}  // namespace septa::merge
