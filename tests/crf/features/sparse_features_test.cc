#include "crf/features/sparse_features.h"

#include <gtest/gtest.h>

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
