// The unlisted instances' cached feature ranges give the scores, gradients and SGD weights of
// the looked-up path bit for bit.
#include "crf/optim/range_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "crf/algorithms/local_training.h"
#include "crf/lattice/fast_exp.h"
#include "crf/optim/sgd.h"
#include "crf/random_data.h"
#include "crf/optim/sgd_cache_equality.h"

namespace septa::crf {
namespace {

constexpr std::size_t kA = 40, kL = 5;

// Node instances over 40 attributes with a bias row; the features come from the first 15
// instances only, so that many attributes have an empty range.
struct Problem {
  Dataset data;
  std::vector<LocalInstance> instances;
  SparseFeatures features;
  SoftmaxModelShape shape;
  explicit Problem(bool unit) {
    data = testing::unit_slice(testing::random_dataset(300, 6, kA, kL, 17), 0, 300);
    data.unit_values = unit;  // the stored values are all 1 either way
    instances = node_instances(data);
    const std::vector<LocalInstance> seen(instances.begin(), instances.begin() + 15);
    features = instance_features(data, seen, kA, kL, 1, 1, false);
    shape = SoftmaxModelShape{&features, kA, kL, 1, nullptr};
  }
};

// A MEMM-like shape's context rows and mask: R = L + 1 rows (the previous label, or none),
// about a third of the classes disallowed in each row but the last, each instance in a random
// row that allows its gold class (the next one that does).
std::vector<char> context_mask(std::vector<LocalInstance>& instances, std::size_t L, unsigned seed) {
  const std::size_t R = L + 1;
  std::vector<char> mask(R * L, 1);
  const std::vector<double> u = testing::random_weights(R * L + instances.size(), 1.0, seed);
  for (std::size_t j = 0; j < (R - 1) * L; ++j) mask[j] = u[j] > -0.35;
  for (std::size_t i = 0; i < instances.size(); ++i) {
    const double x = (u[R * L + i] + 1.0) / 2.0;  // in [0, 1]
    std::size_t r = std::min(R - 1, static_cast<std::size_t>(x * static_cast<double>(R)));
    while (!mask[r * L + static_cast<std::size_t>(instances[i].gold)]) r = (r + 1) % R;
    instances[i].context = static_cast<int32_t>(r);
  }
  return mask;
}

// Every kind of cache (class masks: AVX-512 and K <= 32, wide ones for K <= 64; plain ranges)
// against the looked-up path, for L = 5 (one register of class lanes), 22 (three), 32 (four,
// every bit used), 44 (six: CoNLL-2000 POS) and 64 (eight, every bit used);
// with `disallowed`, over context rows with a mask of allowed classes (-a memm).
void expect_cache_equals_looked_up(std::size_t L, bool masks, bool disallowed, std::size_t& empty) {
  const Dataset data = testing::unit_slice(testing::random_dataset(300, 6, kA, L, 17), 0, 300);
  std::vector<LocalInstance> instances = node_instances(data);
  const std::vector<LocalInstance> seen(instances.begin(), instances.begin() + 15);
  const SparseFeatures features = instance_features(data, seen, kA, L, 1, 1, false);
  const std::vector<char> mask = disallowed ? context_mask(instances, L, 31) : std::vector<char>();
  const SoftmaxModelShape shape{&features, kA, L, disallowed ? L + 1 : 1,
                                disallowed ? &mask : nullptr};
  const RangeCache cache(data, instances, shape, 3, nullptr, masks);
  ASSERT_FALSE(cache.empty());
  if (!masks) {
    EXPECT_FALSE(cache.masked());
  }
#if defined(__x86_64__) && defined(__GNUC__)
  // (an attribute's features are built in class order, so only the processor decides)
  if (masks) {
    EXPECT_EQ(cache.masked() || cache.wide(), __builtin_cpu_supports("avx512f") != 0);
    EXPECT_FALSE(cache.masked() && cache.wide());
    if (cache.wide()) {
      EXPECT_GT(L, 32u);
    }
  }
#endif
  const std::vector<double> w = testing::random_weights(shape.dimension(), 1.0, 8);
  const std::vector<double> g = testing::random_weights(L, 1.0, 9);
  const ItemArrays items = ItemArrays::of(data);
  std::vector<FeatureRange> ranges;
  for (std::size_t i = 0; i < instances.size(); ++i) {
    const LocalInstance& instance = instances[i];
    std::vector<double> expected(L), got(L);
    softmax_ranged_scores(shape, items, instance, w.data(), 0.7, expected.data(), ranges);
    std::vector<FeatureRange> cached;
    cache.each(i, [&](uint32_t first, uint32_t last) { cached.push_back(FeatureRange{first, last, 1.0f}); });
    ASSERT_EQ(cached.size(), ranges.size()) << i;
    for (std::size_t r = 0; r < ranges.size(); ++r) {
      EXPECT_EQ(cached[r].first, ranges[r].first);
      EXPECT_EQ(cached[r].last, ranges[r].last);
    }
    for (std::size_t e = data.item_offsets[instance.item]; e < data.item_offsets[instance.item + 1]; ++e)
      if (features.offsets[data.attribute_ids[e]] == features.offsets[data.attribute_ids[e] + 1]) ++empty;
    cached_ranged_scores(shape, instance, cache, i, w.data(), 0.7, got.data());
    EXPECT_EQ(got, expected) << i;  // bit for bit
    cached_ranged_scores(shape, instance, cache, i, w.data(), 1.0, got.data());
    softmax_ranged_scores(shape, items, instance, w.data(), 1.0, expected.data(), ranges);
    EXPECT_EQ(got, expected) << i;
    std::vector<double> grad_expected(shape.dimension(), 0.0), grad_got(shape.dimension(), 0.0);
    add_ranged_gradient(shape, instance, ranges, g.data(), grad_expected.data());
    add_cached_ranged_gradient(shape, instance, cache, i, g.data(), grad_got.data());
    EXPECT_EQ(grad_got, grad_expected) << i;
  }
}

TEST(RangeCache, ScoresAndGradientsEqualTheLookedUpPath) {
  std::size_t empty = 0;
  for (std::size_t L : {5, 22, 32, 44, 64})
    for (bool masks : {false, true})
      for (bool disallowed : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "L " << L << " masks " << masks << " disallowed " << disallowed);
        expect_cache_equals_looked_up(L, masks, disallowed, empty);
      }
  EXPECT_GT(empty, 0u);  // attributes without features are left out of both
  const Problem q(false);  // values other than 1 possible: nothing cached
  EXPECT_TRUE(RangeCache(q.data, q.instances, q.shape, 1).empty());
}

// Built in order with `built` (the sharded SGD over ranks frees the items behind it): the same
// ranges as the parallel build, progress reported in order up to N, and no item read behind
// what was reported (the callback scrambles those items: the ranges would change).
TEST(RangeCache, BuiltInOrderReadsNoItemBehindWhatItReports) {
  Dataset data = testing::unit_slice(testing::random_dataset(5000, 6, kA, kL, 23), 0, 5000);
  const std::vector<LocalInstance> instances = node_instances(data);
  ASSERT_GT(instances.size(), 3 * 4096u);  // several reports before the last
  const std::vector<LocalInstance> seen(instances.begin(), instances.begin() + 15);
  const SparseFeatures features = instance_features(data, seen, kA, kL, 1, 1, false);
  const SoftmaxModelShape shape{&features, kA, kL, 1, nullptr};
  const RangeCache expected(data, instances, shape, 3);
  std::vector<std::size_t> reports;
  const RangeCache got(data, instances, shape, 3, [&](std::size_t done) {
    ASSERT_TRUE(reports.empty() || done >= reports.back());
    reports.push_back(done);
    const std::size_t item = done < instances.size() ? instances[done].item : data.items();
    for (std::size_t e = 0; e < data.item_offsets[item]; ++e)
      data.attribute_ids[e] = static_cast<int32_t>((data.attribute_ids[e] + 1) % kA);
  });
  ASSERT_GT(reports.size(), 3u);
  EXPECT_EQ(reports.back(), instances.size());
  ASSERT_EQ(got.ranges(), expected.ranges());
  EXPECT_EQ(got.masked(), expected.masked());
  for (std::size_t i = 0; i < instances.size(); ++i) {
    std::vector<std::pair<uint32_t, uint32_t>> a, b;
    got.each(i, [&](uint32_t first, uint32_t last) { a.emplace_back(first, last); });
    expected.each(i, [&](uint32_t first, uint32_t last) { b.emplace_back(first, last); });
    ASSERT_EQ(a, b) << i;
  }
}

// The sharded SGD over the cached ranges (unit values) and over the looked-up ones (the same
// values stored, not flagged as unit) gives the same weights bit for bit, on 1 and 3 threads.
TEST(RangeCache, ShardedSgdGivesTheWeightsOfTheLookedUpPath) {
  const Problem unit(true), plain(false);
  testing::expect_cached_sgd_equals_looked_up(unit, plain);
}

// The same over context rows with a mask of allowed classes (-a memm's shape): the cache is
// built and its fit equals the looked-up one bit for bit.
TEST(RangeCache, ShardedSgdWithAMaskGivesTheWeightsOfTheLookedUpPath) {
  struct Masked : Problem {
    std::vector<char> mask;
    explicit Masked(bool unit) : Problem(unit) {
      mask = context_mask(instances, kL, 41);
      shape = SoftmaxModelShape{&features, kA, kL, kL + 1, &mask};
    }
  };
  const Masked unit(true), plain(false);
  ASSERT_FALSE(RangeCache(unit.data, unit.instances, unit.shape, 1).empty());
  ASSERT_TRUE(RangeCache(plain.data, plain.instances, plain.shape, 1).empty());
  testing::expect_cached_sgd_equals_looked_up(unit, plain);
}

// The same bits (== takes -0 for +0).
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// The fused step (AVX-512: scores, softmax and gradient in registers) against the three kernels
// it replaces, bit for bit (and the fused probabilities against the scores' softmax): the weights after the step, its loss and the marked weights, bit for bit (signs of zeros too); for
// 1 to 8 registers of classes (masked and wide ranges), with and without a dense row, at weights of +0, -0 and small integers (maxima tied at both zeros), and large enough that some
// exponents are clamped at -708.
TEST(RangeCache, FusedStepEqualsScoresSoftmaxAndGradient) {
  std::size_t fused = 0;
  for (std::size_t L : {5, 9, 22, 32, 44, 64})
    for (std::size_t R : {0, 1})
      for (double size : {1.0, 400.0, 0.0}) {
        SCOPED_TRACE(::testing::Message() << "L " << L << " R " << R << " size " << size);
        const Dataset data = testing::unit_slice(testing::random_dataset(300, 6, kA, L, 17), 0, 300);
        const std::vector<LocalInstance> instances = node_instances(data);
        const std::vector<LocalInstance> seen(instances.begin(), instances.begin() + 40);
        const SparseFeatures features = instance_features(data, seen, kA, L, 1, 1, false);
        const SoftmaxModelShape shape{&features, kA, L, R, nullptr};
        const RangeCache cache(data, instances, shape, 1);
        std::vector<double> w_fused = testing::random_weights(shape.dimension(), size, 8);
        if (size == 0.0) {
          // Weights of +0, -0 and small negative integers: scores with maxima of +0 and -0
          // together (the fused step's maximum may take either zero; nothing it computes may
          // differ by a bit).
          std::mt19937 rng(5);
          for (double& x : w_fused) {
            const unsigned pick = rng() % 4;
            x = pick == 0 ? 0.0 : pick == 1 ? -0.0 : -static_cast<double>(rng() % 3);
          }
        }
        std::vector<double> w_plain = w_fused;
        const std::size_t words = shape.dimension() / 64 + 1;
        std::vector<uint64_t> touched_fused(words, 0), touched_plain(words, 0);
        std::vector<double> scores(L);
        for (std::size_t i = 0; i < instances.size(); ++i) {
          const LocalInstance& instance = instances[i];
          const double scale = 0.9 + 0.001 * static_cast<double>(i % 7);
          const double rate = -0.3 / (scale * 0.999);
          std::vector<double> p_fused(L, -1.0);
          if (cached_ranged_probabilities(shape, instance, cache, i, w_fused.data(), scale,
                                          p_fused.data())) {
            cached_ranged_scores(shape, instance, cache, i, w_plain.data(), scale, scores.data());
            softmax_normalize(scores.data(), L);
            ASSERT_TRUE(same_bits(p_fused, scores)) << i;  // the pair candidates' probabilities
          }
          double loss = 0.0;
          if (!fused_ranged_step(shape, instance, cache, i, w_fused.data(), scale, rate,
                                 touched_fused.data(), loss)) {
            EXPECT_FALSE((cache.masked() || cache.wide()) && vector_clone_v3());
            break;
          }
          ++fused;
          cached_ranged_scores(shape, instance, cache, i, w_plain.data(), scale, scores.data());
          const double gold = scores[instance.gold];
          const double expected = softmax_normalize(scores.data(), L) - gold;
          scores[instance.gold] -= 1.0;
          for (double& x : scores) x *= rate;
          add_cached_ranged_gradient(shape, instance, cache, i, scores.data(), w_plain.data(),
                                     touched_plain.data());
          ASSERT_TRUE(same_bits(loss, expected)) << i << ": " << loss << " " << expected;
          ASSERT_TRUE(same_bits(w_fused, w_plain)) << i;
          ASSERT_EQ(touched_fused, touched_plain) << i;
        }
      }
  if (fused == 0) GTEST_SKIP() << "no AVX-512, or no x86-64-v3 clones in this build: the fused step does not run";
}

}  // namespace
}  // namespace septa::crf
