// Finite-difference checks of every locally normalised objective: the unary and pairwise
// factors of separate training, the piecewise node and edge pieces, and the MEMM.
#include "crf/objectives/softmax_objective.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "crf/algorithms/local_training.h"
#include "crf/random_data.h"

namespace septa::crf {
namespace {

void expect_gradient_matches(SoftmaxObjective& objective, unsigned seed) {
  std::vector<double> w = testing::random_weights(objective.dimension(), 1.0, seed);
  std::vector<double> analytic(w.size()), scratch(w.size());
  objective.evaluate(w.data(), analytic.data());
  const double h = 1e-5;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double keep = w[i];
    w[i] = keep + h;
    const double up = objective.evaluate(w.data(), scratch.data());
    w[i] = keep - h;
    const double down = objective.evaluate(w.data(), scratch.data());
    w[i] = keep;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(analytic[i], numeric, 1e-6 * std::max(1.0, std::fabs(numeric))) << "weight " << i;
  }
}

constexpr std::size_t kA = 6, kL = 3;

TEST(SoftmaxObjective, UnaryFactorGradient) {
  const Dataset data = testing::random_dataset(15, 4, kA, kL, 1);
  const auto nodes = node_instances(data);
  const SparseFeatures features = instance_features(data, nodes, kA, kL, 1, 1, false);
  SoftmaxObjective objective(data, nodes, {&features, kA, kL, 1, nullptr}, 1);
  expect_gradient_matches(objective, 2);
}

TEST(SoftmaxObjective, PairwiseFactorGradient) {
  const Dataset data = testing::random_dataset(15, 4, kA, kL, 3);
  const LabelPairs pairs = observed_pairs(data, kL);
  const auto edges = edge_instances(data, pairs.pair_class, kL);
  const SparseFeatures features =
      instance_features(data, edges, kA, pairs.first.size(), 2, 1, false);
  SoftmaxObjective objective(data, edges, {&features, kA, pairs.first.size(), 1, nullptr}, 1);
  expect_gradient_matches(objective, 4);
}

// The beam-restricted pairwise factor: each instance normalises over its own class subset (the
// gold class and a random handful of others, some instances with the gold class alone).
TEST(SoftmaxObjective, PairwiseFactorOverCandidatePairsGradient) {
  const Dataset data = testing::random_dataset(15, 4, kA, kL, 12);
  const LabelPairs pairs = observed_pairs(data, kL);
  auto edges = edge_instances(data, pairs.pair_class, kL);
  const std::size_t K = pairs.first.size();
  ASSERT_GT(K, 3u);
  CandidateLists lists;
  std::mt19937 rng(13);
  for (std::size_t i = 0; i < edges.size(); ++i) {
    lists.classes.push_back(edges[i].gold);
    const std::size_t extra = rng() % 4;
    for (std::size_t k = 0; k < K && k < extra * 2; k += 2)
      if (static_cast<int32_t>(k) != edges[i].gold) lists.classes.push_back(static_cast<int32_t>(k));
    edges[i].candidates = static_cast<int64_t>(lists.size());
    lists.offsets.push_back(lists.classes.size());
  }
  const SparseFeatures features = instance_features(data, edges, kA, K, 2, 1, false);
  SoftmaxModelShape shape{&features, kA, K, 1, nullptr};
  shape.candidates = &lists;
  SoftmaxObjective objective(data, edges, shape, 1);
  expect_gradient_matches(objective, 14);
  // Probabilities vanish outside the subset and sum to one inside it.
  const std::vector<double> w = testing::random_weights(objective.dimension(), 1.0, 15);
  std::vector<double> probs(K);
  for (const LocalInstance& e : edges) {
    softmax_probabilities(shape, ItemArrays::of(data), e, w.data(), probs.data());
    double inside = 0.0;
    for (std::size_t i = lists.offsets[e.candidates]; i < lists.offsets[e.candidates + 1]; ++i)
      inside += probs[lists.classes[i]];
    EXPECT_NEAR(inside, 1.0, 1e-12);
    double total = 0.0;
    for (double p : probs) total += p;
    EXPECT_NEAR(total, 1.0, 1e-12);
  }
}

// The stacked pairwise factor of separate training: every listed class carries a fixed offset
// (the unary log-probabilities of its two labels) added to its score. The offsets shift the
// loss but not the form of the gradient; the loss must equal the explicit formula
//   -log( exp(s_gold + b_gold) / sum_{k in list} exp(s_k + b_k) ).
TEST(SoftmaxObjective, StackedPairwiseFactorWithOffsetsGradient) {
  const Dataset data = testing::random_dataset(15, 4, kA, kL, 21);
  const LabelPairs pairs = observed_pairs(data, kL);
  auto edges = edge_instances(data, pairs.pair_class, kL);
  const std::size_t K = pairs.first.size();
  ASSERT_GT(K, 3u);
  CandidateLists lists;
  std::mt19937 rng(22);
  std::uniform_real_distribution<double> offset(-6.0, 0.0);  // log-probabilities
  for (std::size_t i = 0; i < edges.size(); ++i) {
    lists.classes.push_back(edges[i].gold);
    lists.base.push_back(offset(rng));
    for (std::size_t k = 0; k < K; ++k)
      if (static_cast<int32_t>(k) != edges[i].gold && rng() % 2) {
        lists.classes.push_back(static_cast<int32_t>(k));
        lists.base.push_back(offset(rng));
      }
    edges[i].candidates = static_cast<int64_t>(lists.size());
    lists.offsets.push_back(lists.classes.size());
  }
  const SparseFeatures features = instance_features(data, edges, kA, K, 2, 1, false);
  SoftmaxModelShape shape{&features, kA, K, 1, nullptr};
  shape.candidates = &lists;
  SoftmaxObjective objective(data, edges, shape, 1);
  expect_gradient_matches(objective, 23);

  // The expected loss from the dense pass over every class (no candidate lists), which
  // also checks the listed-classes pass of the objective against it.
  SoftmaxModelShape dense_shape = shape;
  dense_shape.candidates = nullptr;
  const std::vector<double> w = testing::random_weights(objective.dimension(), 1.0, 24);
  std::vector<double> grad(w.size()), raw(K);
  double expected = 0.0;
  for (LocalInstance e : edges) {
    const int64_t list = e.candidates;
    e.candidates = -1;
    softmax_raw_scores(dense_shape, ItemArrays::of(data), e, w.data(), 1.0, raw.data());
    e.candidates = list;
    double z = 0.0, gold = 0.0;
    for (std::size_t i = lists.offsets[e.candidates]; i < lists.offsets[e.candidates + 1]; ++i) {
      const double s = raw[lists.classes[i]] + lists.base[i];
      z += std::exp(s);
      if (lists.classes[i] == e.gold) gold = s;
    }
    expected += e.weight * (std::log(z) - gold);
  }
  EXPECT_NEAR(objective.evaluate(w.data(), grad.data()), expected, 1e-9 * std::fabs(expected));
}

// The listed-classes pass (scan of short feature ranges, search of long ones) gives the dense
// pass's scores bit for bit, and its gradient equals the dense gradient; with many classes
// so that both branches run.
TEST(SoftmaxObjective, ListedClassesPassEqualsTheDensePass) {
  const std::size_t A = 5, K = 60;
  const Dataset data = testing::random_dataset(40, 5, A, K, 31);
  auto nodes = node_instances(data);
  const SparseFeatures features = instance_features(data, nodes, A, K, 1, 1, true);  // long ranges
  CandidateLists lists;
  std::mt19937 rng(32);
  for (LocalInstance& n : nodes) {
    std::vector<int32_t> list{n.gold};
    for (std::size_t extra = rng() % 4; extra > 0; --extra) {
      const int32_t k = static_cast<int32_t>(rng() % K);
      if (std::find(list.begin(), list.end(), k) == list.end()) list.push_back(k);
    }
    lists.classes.insert(lists.classes.end(), list.begin(), list.end());
    n.candidates = static_cast<int64_t>(lists.size());
    lists.offsets.push_back(lists.classes.size());
  }
  SoftmaxModelShape listed{&features, A, K, 1, nullptr};
  listed.candidates = &lists;
  SoftmaxModelShape dense = listed;
  dense.candidates = nullptr;
  const std::vector<double> w = testing::random_weights(listed.dimension(), 1.0, 33);
  std::vector<double> a(K), b(K), c(K), grad_a(w.size(), 0.0), grad_b(w.size(), 0.0), g(K);
  std::vector<double> grad_c(w.size(), 0.0);
  std::vector<FeatureVisit> visits;
  for (const LocalInstance& n : nodes) {
    softmax_raw_scores(listed, ItemArrays::of(data), n, w.data(), 1.0, a.data());
    // The one-lookup pair (scores, then the gradient from the same visits), scaled.
    softmax_listed_scores(listed, ItemArrays::of(data), n, w.data(), 0.75, c.data(), visits);
    LocalInstance plain = n;
    plain.candidates = -1;
    softmax_raw_scores(dense, ItemArrays::of(data), plain, w.data(), 1.0, b.data());
    std::vector<double> scaled(K);
    softmax_raw_scores(dense, ItemArrays::of(data), plain, w.data(), 0.75, scaled.data());
    for (std::size_t i = lists.offsets[n.candidates]; i < lists.offsets[n.candidates + 1]; ++i) {
      EXPECT_EQ(a[lists.classes[i]], b[lists.classes[i]]);
      EXPECT_EQ(c[lists.classes[i]], scaled[lists.classes[i]]);
    }
    std::fill(g.begin(), g.end(), 0.0);
    for (std::size_t i = lists.offsets[n.candidates]; i < lists.offsets[n.candidates + 1]; ++i)
      g[lists.classes[i]] = 0.25 * static_cast<double>(i % 7) - 0.5;
    add_instance_gradient(listed, ItemArrays::of(data), n, g.data(), grad_a.data());
    add_instance_gradient(dense, ItemArrays::of(data), plain, g.data(), grad_b.data());
    add_listed_gradient(listed, n, visits, g.data(), grad_c.data());
  }
  EXPECT_EQ(grad_a, grad_b);
  EXPECT_EQ(grad_c, grad_b);
}

// The ranged pass of SGD (scores, then the gradient from the same feature ranges) gives the
// dense pass's scores and gradient bit for bit: nodes and edges, some attributes without
// features (min_freq 2 leaves empty ranges), repeated attributes, a scale.
TEST(SoftmaxObjective, RangedPassEqualsTheDensePass) {
  const std::size_t A = 7;
  const Dataset data = testing::random_dataset(60, 6, A, 3, 41);
  const LabelPairs pairs = observed_pairs(data, 3);
  for (int span : {1, 2}) {
    const std::vector<LocalInstance> instances =
        span == 1 ? node_instances(data) : edge_instances(data, pairs.pair_class, 3);
    const std::size_t classes = span == 1 ? 3 : pairs.first.size();
    const SparseFeatures features = instance_features(data, instances, A, classes, span, 2, false);
    SoftmaxModelShape shape{&features, A, classes, 1, nullptr};
    const std::vector<double> w = testing::random_weights(shape.dimension(), 1.0, 42);
    std::vector<double> a(classes), b(classes), g(classes);
    std::vector<double> grad_a(w.size(), 0.0), grad_b(w.size(), 0.0);
    std::vector<FeatureRange> ranges;
    for (const LocalInstance& instance : instances) {
      softmax_raw_scores(shape, ItemArrays::of(data), instance, w.data(), 0.75, a.data());
      softmax_ranged_scores(shape, ItemArrays::of(data), instance, w.data(), 0.75, b.data(),
                            ranges);
      EXPECT_EQ(a, b);
      for (const FeatureRange& r : ranges) EXPECT_LT(r.first, r.last);
      for (std::size_t c = 0; c < classes; ++c) g[c] = 0.25 * static_cast<double>(c % 5) - 0.5;
      add_instance_gradient(shape, ItemArrays::of(data), instance, g.data(), grad_a.data());
      add_ranged_gradient(shape, instance, ranges, g.data(), grad_b.data());
    }
    EXPECT_EQ(grad_a, grad_b) << "span " << span;
  }
}

// A dataset known to hold only values of 1 (Dataset::unit_values, as the column encoder sets)
// is scored without reading its values, bit for bit as with them; the objective too.
TEST(SoftmaxObjective, UnitValuedDataScoresAsWithItsValues) {
  const std::size_t A = 6, L = 4;
  Dataset data = testing::random_dataset(50, 6, A, L, 51);
  std::fill(data.attribute_values.begin(), data.attribute_values.end(), 1.0f);
  const std::vector<LocalInstance> nodes = node_instances(data);
  const SparseFeatures features = instance_features(data, nodes, A, L, 1, 1, false);
  const SoftmaxModelShape shape{&features, A, L, 1, nullptr};
  const std::vector<double> w = testing::random_weights(shape.dimension(), 1.0, 52);
  Dataset unit = data;
  unit.unit_values = true;
  EXPECT_EQ(ItemArrays::of(unit).values, nullptr);
  EXPECT_NE(ItemArrays::of(data).values, nullptr);
  std::vector<double> a(L), b(L), grad_a(w.size()), grad_b(w.size());
  for (const LocalInstance& n : nodes) {
    softmax_raw_scores(shape, ItemArrays::of(data), n, w.data(), 0.5, a.data());
    softmax_raw_scores(shape, ItemArrays::of(unit), n, w.data(), 0.5, b.data());
    EXPECT_EQ(a, b);
  }
  SoftmaxObjective with_values(data, nodes, shape, 2), without(unit, nodes, shape, 2);
  EXPECT_EQ(with_values.evaluate(w.data(), grad_a.data()), without.evaluate(w.data(), grad_b.data()));
  EXPECT_EQ(grad_a, grad_b);
}

TEST(SoftmaxObjective, PiecewiseNodeAndEdgePieceGradients) {
  const Dataset data = testing::random_dataset(15, 4, kA, kL, 5);
  const auto nodes = node_instances(data);
  const SparseFeatures features = instance_features(data, nodes, kA, kL, 1, 1, true);
  SoftmaxObjective node_objective(data, nodes, {&features, kA, kL, 0, nullptr}, 1);
  expect_gradient_matches(node_objective, 6);

  std::vector<int32_t> all_pairs(kL * kL);
  for (std::size_t q = 0; q < all_pairs.size(); ++q) all_pairs[q] = static_cast<int32_t>(q);
  auto edges = edge_instances(data, all_pairs, kL);
  for (LocalInstance& e : edges) e.span = 0;
  const SparseFeatures none{0, kL * kL, {0}, {}};
  SoftmaxObjective edge_objective(data, edges, {&none, 0, kL * kL, 1, nullptr}, 1);
  expect_gradient_matches(edge_objective, 7);
}

TEST(SoftmaxObjective, MemmGradientWithSuccessorMask) {
  const Dataset data = testing::random_dataset(15, 4, kA, kL, 8);
  auto instances = node_instances(data);
  std::vector<char> mask((kL + 1) * kL, 0);
  for (std::size_t n = 0; n < data.size(); ++n)
    for (std::size_t i = data.sequence_offsets[n]; i < data.sequence_offsets[n + 1]; ++i) {
      const int32_t previous = i == data.sequence_offsets[n] ? kL : data.labels[i - 1];
      instances[i].context = previous;
      mask[previous * kL + data.labels[i]] = 1;
    }
  const SparseFeatures features = instance_features(data, instances, kA, kL, 1, 1, false);
  SoftmaxObjective objective(data, instances, {&features, kA, kL, kL + 1, &mask}, 1);
  expect_gradient_matches(objective, 9);
}

TEST(SoftmaxObjective, ThreadCountDoesNotChangeABit) {
  const Dataset data = testing::random_dataset(400, 8, 30, 4, 10);
  const auto nodes = node_instances(data);
  const SparseFeatures features = instance_features(data, nodes, 30, 4, 1, 1, false);
  const std::vector<double> w = testing::random_weights(features.size() + 4, 1.0, 11);
  std::vector<double> g1(w.size()), g3(w.size());
  SoftmaxObjective one(data, nodes, {&features, 30, 4, 1, nullptr}, 1);
  SoftmaxObjective three(data, nodes, {&features, 30, 4, 1, nullptr}, 3);
  EXPECT_EQ(one.evaluate(w.data(), g1.data()), three.evaluate(w.data(), g3.data()));
  EXPECT_EQ(g1, g3);
}

}  // namespace
}  // namespace septa::crf
