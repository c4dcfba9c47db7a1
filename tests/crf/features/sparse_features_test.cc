#include "crf/features/sparse_features.h"

#include <gtest/gtest.h>

#include <map>
#include <utility>
#include <random>

#include "crf/algorithms/local_training.h"
#include "crf/random_data.h"

namespace septa::crf {
namespace {

SparseFeaturesBuilder sample() {
  // attribute 0: class 1 x3, class 0 x1; attribute 1: nothing; attribute 2: class 2 x2.
  SparseFeaturesBuilder builder(3, 3);
  for (auto [a, k] : {std::pair{0, 1}, {2, 2}, {0, 0}, {0, 1}, {2, 2}, {0, 1}}) builder.add(a, k);
  return builder;
}

TEST(SparseFeatures, ObservedPairsWithCountsInAttributeThenClassOrder) {
  std::vector<uint32_t> counts;
  const SparseFeatures f = sample().build(1, false, &counts);
  EXPECT_EQ(f.offsets, (std::vector<uint32_t>{0, 2, 2, 3}));
  EXPECT_EQ(f.classes, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(counts, (std::vector<uint32_t>{1, 3, 2}));
  EXPECT_EQ(f.find(0, 1), 1);
  EXPECT_EQ(f.find(1, 0), -1);
}

TEST(SparseFeatures, FrequencyCutoffDropsRareFeatures) {
  const SparseFeatures f = sample().build(2, false);
  EXPECT_EQ(f.offsets, (std::vector<uint32_t>{0, 1, 1, 2}));
  EXPECT_EQ(f.classes, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(sample().build(4, false).size(), 0u);
}

TEST(SparseFeatures, AllPossibleStatesGivesEveryClassToFrequentAttributes) {
  std::vector<uint32_t> counts;
  const SparseFeatures f = sample().build(1, true, &counts);
  EXPECT_EQ(f.offsets, (std::vector<uint32_t>{0, 3, 3, 6}));
  EXPECT_EQ(counts, (std::vector<uint32_t>{1, 3, 0, 0, 0, 2}));
  // With a cutoff of 3 occurrences only attribute 0 (4 occurrences) keeps its features.
  const SparseFeatures g = sample().build(3, true);
  EXPECT_EQ(g.offsets, (std::vector<uint32_t>{0, 3, 3, 3}));
}

// Buckets long enough to be counted rather than sorted, and short ones, against a map of
// (attribute, class) counts; each min_freq and all_classes rule.
TEST(SparseFeatures, LongAndShortBucketsGiveTheCountedFeatures) {
  const std::size_t A = 40, K = 70;
  std::mt19937 rng(5);
  std::vector<std::pair<int32_t, int32_t>> occurrences;
  for (int i = 0; i < 3000; ++i) {
    const int32_t a = static_cast<int32_t>(rng() % A);
    // Attributes below 10 get many occurrences over few classes (long buckets).
    const int32_t k = static_cast<int32_t>(a < 10 ? rng() % 6 : rng() % K);
    occurrences.push_back({a, k});
    if (a < 10)
      for (int j = 0; j < 5; ++j) occurrences.push_back({a, static_cast<int32_t>(rng() % K)});
  }
  std::map<std::pair<int32_t, int32_t>, uint32_t> count;
  std::vector<uint32_t> per_attribute(A, 0);
  for (const auto& o : occurrences) {
    ++count[o];
    ++per_attribute[o.first];
  }
  for (int min_freq : {1, 2, 4})
    for (bool all_classes : {false, true}) {
      SparseFeaturesBuilder builder(A, K);
      for (const auto& [a, k] : occurrences) builder.add(a, k);
      std::vector<uint32_t> counts;
      const SparseFeatures f = builder.build(min_freq, all_classes, &counts);
      std::vector<uint32_t> offsets{0};
      std::vector<int32_t> classes;
      std::vector<uint32_t> expected_counts;
      for (std::size_t a = 0; a < A; ++a) {
        for (std::size_t k = 0; k < K; ++k) {
          const auto it = count.find({static_cast<int32_t>(a), static_cast<int32_t>(k)});
          const uint32_t c = it == count.end() ? 0 : it->second;
          const bool kept = all_classes ? per_attribute[a] > 0 &&
                                              per_attribute[a] >= static_cast<uint32_t>(min_freq)
                                        : c > 0 && c >= static_cast<uint32_t>(min_freq);
          if (!kept) continue;
          classes.push_back(static_cast<int32_t>(k));
          expected_counts.push_back(c);
        }
        offsets.push_back(static_cast<uint32_t>(classes.size()));
      }
      EXPECT_EQ(f.offsets, offsets) << min_freq << " " << all_classes;
      EXPECT_EQ(f.classes, classes) << min_freq << " " << all_classes;
      EXPECT_EQ(counts, expected_counts) << min_freq << " " << all_classes;
    }
}

// instance_features (the class bit sets at min_freq 1, two passes over the instances, or the
// parallel radix build) gives what a builder fed every (attribute + k A, gold) occurrence
// gives, for nodes and edges, with fewer and with more attributes than the parallel build has
// ranges, and with up to 16, 144 and 289 pair classes (bit sets of 1 and 3 words; none past 256).
TEST(SparseFeatures, InstanceFeaturesEqualTheBuildersFeatures) {
  const std::pair<std::size_t, std::size_t> sizes[] = {{12, 4},  {500, 4},  {12, 12},
                                                        {500, 12}, {12, 17}, {500, 17}};  // A, L
  for (const auto& [A, L] : sizes) {
    const Dataset data = testing::random_dataset(300, 8, A, L, 9);
    const LabelPairs pairs = observed_pairs(data, L);
    for (int span : {1, 2}) {
      const std::vector<LocalInstance> instances =
          span == 1 ? node_instances(data) : edge_instances(data, pairs.pair_class, L);
      const std::size_t K = span == 1 ? L : pairs.first.size();
      for (int min_freq : {1, 3})
        for (bool all_classes : {false, true}) {
          SparseFeaturesBuilder builder(A * span, K);
          for (const LocalInstance& instance : instances)
            for (int32_t k = 0; k < instance.span; ++k)
              for (std::size_t e = data.item_offsets[instance.item + k];
                   e < data.item_offsets[instance.item + k + 1]; ++e)
                builder.add(data.attribute_ids[e] + static_cast<int32_t>(k * A), instance.gold);
          const SparseFeatures expected = builder.build(min_freq, all_classes);
          for (int threads : {1, 2, 3, 8}) {  // the parallel build (64 attribute ranges) too
            const SparseFeatures f =
                instance_features(data, instances, A, K, span, min_freq, all_classes, threads);
            EXPECT_EQ(f.offsets, expected.offsets)
                << span << " " << min_freq << " " << all_classes << " " << threads;
            EXPECT_EQ(f.classes, expected.classes)
                << span << " " << min_freq << " " << all_classes << " " << threads;
          }
        }
    }
  }
}

TEST(SparseFeatures, ScoresAndExpectationsTouchOnlyTheAttributesFeatures) {
  const SparseFeatures f = sample().build(1, false);
  const double w[] = {0.5, -1.0, 2.0};
  double scores[3] = {0, 0, 0};
  f.add_scores(0, 2.0, w, scores);
  EXPECT_EQ(scores[0], 1.0);
  EXPECT_EQ(scores[1], -2.0);
  EXPECT_EQ(scores[2], 0.0);
  double grad[3] = {0, 0, 0};
  const double probs[] = {0.2, 0.3, 0.5};
  f.add_expectations(2, 1.0, probs, grad);
  EXPECT_EQ(grad[2], 0.5);
  EXPECT_EQ(grad[0] + grad[1], 0.0);
}

}  // namespace
}  // namespace septa::crf
