#include "crf/objectives/crf_objective.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "crf/optim/minimizer.h"
#include "crf/features/sparse_features.h"
#include "crf/random_data.h"
#include "septa/communicator.h"

namespace septa::crf {
namespace {

LinearChainScorer structure_for(const Dataset& data, std::size_t A, std::size_t L,
                                bool all_states) {
  SparseFeaturesBuilder builder(A, L);
  for (std::size_t i = 0; i < data.items(); ++i)
    for (std::size_t e = data.item_offsets[i]; e < data.item_offsets[i + 1]; ++e)
      builder.add(data.attribute_ids[e], data.labels[i]);
  return LinearChainScorer(builder.build(1, all_states), L);
}

// Central differences of `f` at w for every coordinate.
std::vector<double> numeric_gradient(const ObjectiveFunction& f, std::vector<double> w,
                                     double h = 1e-5) {
  std::vector<double> g(w.size()), scratch(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    const double keep = w[i];
    w[i] = keep + h;
    const double up = f(w.data(), scratch.data());
    w[i] = keep - h;
    const double down = f(w.data(), scratch.data());
    w[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

TEST(CrfObjective, GradientMatchesFiniteDifferences) {
  const Dataset data = testing::random_dataset(12, 5, 7, 3, 42);
  for (bool all_states : {false, true}) {
    const LinearChainScorer structure = structure_for(data, 7, 3, all_states);
    CrfObjective objective(data, structure, 1);
    const std::vector<double> w = testing::random_weights(objective.dimension(), 1.0, 3);
    ObjectiveFunction f = [&](const double* x, double* g) { return objective.evaluate(x, g); };
    std::vector<double> analytic(w.size());
    f(w.data(), analytic.data());
    const std::vector<double> numeric = numeric_gradient(f, w);
    for (std::size_t i = 0; i < w.size(); ++i)
      EXPECT_NEAR(analytic[i], numeric[i], 1e-6 * std::max(1.0, std::fabs(numeric[i]))) << i;
  }
}

// Unit-valued data may drop its values (lbfgs on column data): the objective and gradient
// keep every bit, for 1 and 3 threads. Without values the state features go through
// LinearChainScorer::fill_listed and the expected counts over its list, with them through fill
// and the rows: 3 labels, and 23 with every state (rows of 23 features, three blocks of 8).
TEST(CrfObjective, DroppedUnitValuesGiveTheSameBits) {
  for (const std::size_t L : {3, 23}) {
    Dataset with = testing::random_dataset(40, 6, 9, L, 17);
    std::fill(with.attribute_values.begin(), with.attribute_values.end(), 1.0f);
    Dataset without = with;
    std::vector<float>().swap(without.attribute_values);
    ASSERT_EQ(without.sequence(0).attribute_values, nullptr);
    const LinearChainScorer structure = structure_for(with, 9, L, L > 3);
    ASSERT_TRUE(structure.listed());
    const std::vector<double> w = testing::random_weights(structure.feature_count(), 1.0, 4);
    for (int threads : {1, 3}) {
      CrfObjective a(with, structure, threads), b(without, structure, threads);
      std::vector<double> ga(w.size()), gb(w.size());
      const double fa = a.evaluate(w.data(), ga.data()), fb = b.evaluate(w.data(), gb.data());
      EXPECT_EQ(std::memcmp(&fa, &fb, sizeof fa), 0) << L << " " << threads;
      EXPECT_EQ(std::memcmp(ga.data(), gb.data(), sizeof(double) * w.size()), 0)
          << L << " " << threads;
    }
    // Not a vacuous comparison: other values change the objective.
    Dataset other = with;
    other.attribute_values[0] = 2.0f;
    CrfObjective c(other, structure, 1), d(without, structure, 1);
    std::vector<double> g(w.size());
    EXPECT_NE(c.evaluate(w.data(), g.data()), d.evaluate(w.data(), g.data())) << L;
  }
}

// The masked rows (AVX-512, L <= 64: 32-bit masks, 64-bit ones over 32) give the objective and
// gradient of the listed features bit for bit, for 1 and 3 threads, around the registers of 8
// labels.
TEST(CrfObjective, MaskedRowsGiveTheBitsOfListedFeatures) {
  for (const std::size_t L : {3, 9, 23, 32, 33, 44, 64}) {
    const Dataset data = [&] {
      Dataset d = testing::random_dataset(40, 6, 9, L, 23);
      std::vector<float>().swap(d.attribute_values);
      return d;
    }();
    const LinearChainScorer structure = structure_for(data, 9, L, L > 3);
    const std::vector<double> w = testing::random_weights(structure.feature_count(), 1.0, 5);
    for (int threads : {1, 3}) {
      CrfObjective masked(data, structure, threads), listed(data, structure, threads, nullptr,
                                                             /*masked=*/false);
      EXPECT_FALSE(listed.masked());
      if (!masked.masked()) GTEST_SKIP() << "no AVX-512: no masked rows";
      std::vector<double> ga(w.size()), gb(w.size());
      const double fa = masked.evaluate(w.data(), ga.data());
      const double fb = listed.evaluate(w.data(), gb.data());
      EXPECT_EQ(std::memcmp(&fa, &fb, sizeof fa), 0) << L << " " << threads;
      EXPECT_EQ(std::memcmp(ga.data(), gb.data(), sizeof(double) * w.size()), 0)
          << L << " " << threads;
    }
  }
}

TEST(CrfObjective, PenalizedGradientMatchesFiniteDifferencesWithL2AndL1OffTheKinks) {
  const Dataset data = testing::random_dataset(10, 4, 6, 3, 5);
  const LinearChainScorer structure = structure_for(data, 6, 3, false);
  CrfObjective objective(data, structure, 1);
  ObjectiveFunction raw = [&](const double* x, double* g) { return objective.evaluate(x, g); };
  // Weights at least 0.1 away from zero, so steps of 1e-5 never cross a kink.
  std::vector<double> w = testing::random_weights(objective.dimension(), 1.0, 9);
  for (double& x : w) x += x >= 0 ? 0.1 : -0.1;
  for (auto penalty : {std::pair{0.0, 0.7}, std::pair{0.3, 0.0}, std::pair{0.3, 0.7}}) {
    const double c1 = penalty.first, c2 = penalty.second;  // (clang cannot capture bindings)
    ObjectiveFunction f = [&](const double* x, double* g) {
      return penalized(raw, x, g, w.size(), c1, c2);
    };
    std::vector<double> analytic(w.size());
    f(w.data(), analytic.data());
    const std::vector<double> numeric = numeric_gradient(f, w);
    for (std::size_t i = 0; i < w.size(); ++i)
      EXPECT_NEAR(analytic[i], numeric[i], 1e-6 * std::max(1.0, std::fabs(numeric[i])))
          << "c1=" << c1 << " c2=" << c2 << " i=" << i;
  }
}

TEST(CrfObjective, OneAndManyThreadsGiveBitIdenticalObjectiveAndGradient) {
  const Dataset data = testing::random_dataset(300, 12, 40, 5, 17);
  const LinearChainScorer structure = structure_for(data, 40, 5, false);
  const std::vector<double> w = testing::random_weights(structure.feature_count(), 1.0, 4);
  CrfObjective one(data, structure, 1);
  std::vector<double> g1(w.size());
  const double f1 = one.evaluate(w.data(), g1.data());
  for (int threads : {2, 3, 8}) {
    CrfObjective many(data, structure, threads);
    std::vector<double> g(w.size());
    const double f = many.evaluate(w.data(), g.data());
    EXPECT_EQ(f, f1) << threads << " threads";  // bit-identical, not merely close
    EXPECT_EQ(g, g1) << threads << " threads";
  }
}

// The command line trains through a one-rank layout, which commits its blocks directly instead
// of through the ranks' exchange: the same objective and gradient bits as without a layout
// over the same blocks (unit values and weights: a layout needs integer counts), for 1 and 3 threads.
TEST(CrfObjective, OneRankLayoutGivesTheBitsOfNoLayout) {
  Dataset data = testing::unit_slice(testing::random_dataset(300, 12, 40, 5, 17), 0, 300);
  std::fill(data.weights.begin(), data.weights.end(), 1.0);  // integer counts
  const LinearChainScorer structure = structure_for(data, 40, 5, false);
  const std::vector<double> w = testing::random_weights(structure.feature_count(), 1.0, 4);
  LocalCommunicator local;
  BlockLayout layout;
  layout.comm = &local;
  layout.bounds = partition_by_items(data, CrfObjective::kBlocks);
  layout.total = CrfObjective::kBlocks;
  for (int threads : {1, 3}) {
    CrfObjective plain(data, structure, threads), ranked(data, structure, threads, &layout);
    ASSERT_EQ(ranked.owned_begin(), 0u);
    ASSERT_EQ(ranked.owned_end(), w.size());
    std::vector<double> g1(w.size()), g2(w.size(), 7.0);
    const double f1 = plain.evaluate(w.data(), g1.data());
    const double f2 = ranked.evaluate_owned(w.data(), g2.data());
    EXPECT_EQ(std::memcmp(&f1, &f2, sizeof f1), 0) << threads;
    EXPECT_EQ(std::memcmp(g1.data(), g2.data(), sizeof(double) * w.size()), 0) << threads;
    EXPECT_EQ(ranked.bytes_sent(), 0u);
  }
}

TEST(Minimizer, FindsTheMinimumOfAQuadratic) {
  // f(w) = sum_i (i+1) (w_i - i)^2, minimum at w_i = i.
  ObjectiveFunction f = [](const double* w, double* g) {
    double value = 0.0;
    for (int i = 0; i < 5; ++i) {
      value += (i + 1) * (w[i] - i) * (w[i] - i);
      g[i] = 2.0 * (i + 1) * (w[i] - i);
    }
    return value;
  };
  std::vector<double> w(5, 0.0);
  MinimizerOptions options;
  options.epsilon = 1e-10;
  options.delta = 0.0;
  const MinimizerResult result = minimize(f, w, options, nullptr);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(w[i], i, 1e-6);
  EXPECT_FALSE(result.cancelled);
}

TEST(Minimizer, L1DrivesIrrelevantWeightsToExactlyZero) {
  // f(w) = (w0 - 3)^2 + 0.01 (w1 - 0.1)^2: with c1 = 0.5, w1's pull is too weak to leave zero.
  ObjectiveFunction f = [](const double* w, double* g) {
    g[0] = 2.0 * (w[0] - 3.0);
    g[1] = 0.02 * (w[1] - 0.1);
    return (w[0] - 3.0) * (w[0] - 3.0) + 0.01 * (w[1] - 0.1) * (w[1] - 0.1);
  };
  std::vector<double> w(2, 0.0);
  MinimizerOptions options;
  options.c1 = 0.5;
  minimize(f, w, options, nullptr);
  EXPECT_NEAR(w[0], 2.75, 1e-4);
  EXPECT_EQ(w[1], 0.0);
}

TEST(Minimizer, CallbackReturningFalseCancels) {
  ObjectiveFunction f = [](const double* w, double* g) {
    g[0] = 2.0 * (w[0] - 1.0);
    return (w[0] - 1.0) * (w[0] - 1.0) + 1.0;
  };
  std::vector<double> w(1, 100.0);
  int calls = 0;
  const MinimizerResult result =
      minimize(f, w, MinimizerOptions(), [&](const MinimizerIteration&) { return ++calls < 1; });
  EXPECT_TRUE(result.cancelled);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace septa::crf
