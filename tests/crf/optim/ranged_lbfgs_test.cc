// The range-split L-BFGS / OWL-QN against liblbfgs on small convex problems, and its iterates
// across rank counts (ranks simulated by threads sharing memory).
#include "crf/optim/ranged_lbfgs.h"

#include "crf/thread_communicator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

namespace septa::crf {
namespace {

using test_support::ThreadCommunicator;
using test_support::ThreadGroup;

// L2-free logistic regression, f(w) = sum_n log(1 + exp(-y_n x_n.w)) on sparse random rows:
// smooth and convex; with c2 > 0 strictly convex.
struct Logistic {
  std::size_t F;
  std::vector<std::vector<std::pair<std::size_t, double>>> rows;  // [N][*] (feature, value)
  std::vector<double> labels;                                      // [N] +-1
  Logistic(std::size_t features, std::size_t n, unsigned seed) : F(features) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> pick(0, F - 1);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> truth(F);
    for (double& t : truth) t = normal(rng);
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<std::pair<std::size_t, double>> row;
      double margin = 0.0;
      for (int j = 0; j < 12; ++j) {
        row.emplace_back(pick(rng), normal(rng));
        margin += truth[row.back().first] * row.back().second;
      }
      labels.push_back(margin + normal(rng) > 0.0 ? 1.0 : -1.0);
      rows.push_back(row);
    }
  }
  double operator()(const double* w, double* g) const {
    std::fill(g, g + F, 0.0);
    double f = 0.0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      double z = 0.0;
      for (const auto& [k, v] : rows[i]) z += w[k] * v;
      const double m = labels[i] * z;
      f += m > 0.0 ? std::log1p(std::exp(-m)) : -m + std::log1p(std::exp(m));
      const double slope = -labels[i] / (1.0 + std::exp(m));  // d f / d z
      for (const auto& [k, v] : rows[i]) g[k] += slope * v;
    }
    return f;
  }
};

struct Outcome {
  std::vector<double> w;
  MinimizerResult result;
  std::vector<double> trace;  // objective after each iteration
};

// minimize_ranged over `ranks` simulated ranks; rank 0's outcome (all must agree, checked).
// skewed: the ranks' ranges balanced by a cost that falls with the feature id (as the
// objective's are), else equal chunk counts.
Outcome run_ranks(const Logistic& problem, const MinimizerOptions& options, int ranks,
                  bool skewed = false) {
  ThreadGroup group(ranks);
  std::vector<Outcome> outcomes(static_cast<std::size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      ThreadCommunicator comm(group, r);
      const std::size_t C = (problem.F + FeatureRanges::kChunk - 1) / FeatureRanges::kChunk;
      std::vector<uint64_t> cost(C);
      for (std::size_t c = 0; c < C; ++c) cost[c] = 1000 / (c + 1);
      const FeatureRanges ranges =
          skewed ? FeatureRanges(problem.F, &comm,
                                 FeatureRanges::balanced(problem.F, static_cast<std::size_t>(ranks),
                                                         cost))
                 : FeatureRanges(problem.F, &comm);
      std::vector<double> full(problem.F);  // [F] whole gradient, of which this rank keeps its range
      RangeObjective f = [&](const double* w, double* g) {
        const double value = problem(w, full.data());
        std::copy(full.begin() + static_cast<std::ptrdiff_t>(ranges.lo()),
                  full.begin() + static_cast<std::ptrdiff_t>(ranges.hi()), g);
        return value;
      };
      Outcome& out = outcomes[static_cast<std::size_t>(r)];
      out.w.assign(problem.F, 0.0);
      out.result = minimize_ranged(f, out.w, ranges, options, [&](const MinimizerIteration& it) {
        out.trace.push_back(it.objective);
        return true;
      });
    });
  for (std::thread& t : threads) t.join();
  for (int r = 1; r < ranks; ++r) {
    EXPECT_EQ(0, std::memcmp(outcomes[0].w.data(), outcomes[r].w.data(), 8 * problem.F))
        << "rank " << r << " of " << ranks;
    EXPECT_EQ(outcomes[0].trace, outcomes[r].trace);
  }
  return outcomes[0];
}

Outcome run_liblbfgs(const Logistic& problem, const MinimizerOptions& options) {
  Outcome out;
  out.w.assign(problem.F, 0.0);
  ObjectiveFunction f = [&](const double* w, double* g) { return problem(w, g); };
  out.result = minimize(f, out.w, options, [&](const MinimizerIteration& it) {
    out.trace.push_back(it.objective);
    return true;
  });
  return out;
}

MinimizerOptions converging(double c1, double c2, int linesearch) {
  MinimizerOptions o;
  o.c1 = c1;
  o.c2 = c2;
  o.linesearch = linesearch;
  o.epsilon = 1e-7;
  o.delta = 0.0;  // stop on the gradient only
  o.max_iterations = 2000;
  return o;
}

// 5,000 features: five chunks of FeatureRanges::kChunk, so 2-4 ranks each own a part.
const Logistic& problem() {
  static const Logistic p(5000, 1500, 7);
  return p;
}

TEST(RangedLbfgs, ReachesTheMinimumOfAQuadratic) {
  const std::size_t F = 3000;
  std::vector<double> target(F), curvature(F);
  for (std::size_t i = 0; i < F; ++i) {
    target[i] = std::sin(0.37 * static_cast<double>(i));
    curvature[i] = 0.5 + static_cast<double>(i % 17);
  }
  // f(w) = sum_i c_i (w_i - t_i)^2
  const FeatureRanges ranges(F, nullptr);
  RangeObjective f = [&](const double* w, double* g) {
    double value = 0.0;
    for (std::size_t i = 0; i < F; ++i) {
      value += curvature[i] * (w[i] - target[i]) * (w[i] - target[i]);
      g[i] = 2.0 * curvature[i] * (w[i] - target[i]);
    }
    return value;
  };
  for (int linesearch : {0, 1, 2}) {
    MinimizerOptions options = converging(0.0, 0.0, linesearch);
    options.epsilon = 1e-10;
    std::vector<double> w(F, 0.0);
    const MinimizerResult result = minimize_ranged(f, w, ranges, options, nullptr);
    EXPECT_EQ(result.stop_reason, "converged (gradient)") << linesearch;
    for (std::size_t i = 0; i < F; ++i) ASSERT_NEAR(w[i], target[i], 1e-8) << i;
  }
}

// L2 (More-Thuente, backtracking Wolfe, strong Wolfe) and L1 (OWL-QN): the same optimum as
// liblbfgs, in a comparable number of iterations.
TEST(RangedLbfgs, MatchesLiblbfgsOnConvexProblems) {
  struct Case {
    double c1, c2;
    int linesearch;
  };
  for (const Case& c : {Case{0.0, 0.1, 0}, Case{0.0, 0.1, 1}, Case{0.0, 0.1, 2},
                        Case{0.5, 0.01, 1}}) {
    const MinimizerOptions options = converging(c.c1, c.c2, c.linesearch);
    const Outcome ours = run_ranks(problem(), options, 1);
    const Outcome theirs = run_liblbfgs(problem(), options);
    const std::string label = "c1 " + std::to_string(c.c1) + " linesearch " +
                              std::to_string(c.linesearch);
    EXPECT_EQ(ours.result.stop_reason, "converged (gradient)") << label;
    EXPECT_NEAR(ours.result.objective, theirs.result.objective,
                1e-9 * std::fabs(theirs.result.objective))
        << label;
    double distance = 0.0, norm = 0.0;
    for (std::size_t i = 0; i < ours.w.size(); ++i) {
      distance = std::max(distance, std::fabs(ours.w[i] - theirs.w[i]));
      norm = std::max(norm, std::fabs(theirs.w[i]));
    }
    EXPECT_LT(distance, 1e-4 * norm) << label;
    if (c.c1 > 0.0) {
      std::size_t zeros_ours = 0, zeros_theirs = 0;
      for (std::size_t i = 0; i < ours.w.size(); ++i) {
        zeros_ours += ours.w[i] == 0.0;
        zeros_theirs += theirs.w[i] == 0.0;
      }
      EXPECT_GT(zeros_theirs, ours.w.size() / 10) << "L1 should zero features";
      EXPECT_NEAR(static_cast<double>(zeros_ours), static_cast<double>(zeros_theirs),
                  0.01 * static_cast<double>(ours.w.size()));
    }
    EXPECT_LE(ours.result.iterations, theirs.result.iterations * 5 / 4 + 2) << label;
    EXPECT_GE(ours.result.iterations, theirs.result.iterations * 3 / 4 - 2) << label;
  }
}

// The same iterates, bit for bit, on 1, 2, 3 and 4 ranks (every rank agrees, checked inside).
TEST(RangedLbfgs, IdenticalAcrossRankCounts) {
  for (const double c1 : {0.0, 0.5}) {
    MinimizerOptions options = converging(c1, 0.05, 0);
    options.epsilon = 1e-12;
    options.max_iterations = 40;
    const Outcome one = run_ranks(problem(), options, 1);
    ASSERT_GE(one.result.iterations, 25);
    for (int ranks : {2, 3, 4})
      for (const bool skewed : {false, true}) {  // equal or cost-balanced (unequal) ranges
        const Outcome many = run_ranks(problem(), options, ranks, skewed);
        EXPECT_EQ(0, std::memcmp(one.w.data(), many.w.data(), 8 * one.w.size()))
            << ranks << " ranks, c1 " << c1 << ", skewed " << skewed;
        EXPECT_EQ(one.trace, many.trace) << ranks << " ranks, c1 " << c1;
        EXPECT_EQ(one.result.stop_reason, many.result.stop_reason);
      }
  }
}

// Rank bounds b [N + 1] cover [0, F) in order, every inner bound on a chunk boundary.
void expect_chunk_aligned_cover(const std::vector<std::size_t>& b, std::size_t F) {
  EXPECT_EQ(b.front(), 0u);
  EXPECT_EQ(b.back(), F);
  for (std::size_t q = 0; q + 1 < b.size(); ++q) {
    EXPECT_LE(b[q], b[q + 1]) << "F " << F << " rank " << q;
    EXPECT_TRUE(b[q] % FeatureRanges::kChunk == 0 || b[q] == F) << "F " << F << " rank " << q;
  }
}

TEST(FeatureRanges, BalancedBoundsCoverAndSplitTheCostEvenly) {
  std::mt19937 rng(5);
  for (std::size_t F : {0u, 1u, 1023u, 5000u, 100000u})
    for (std::size_t N = 1; N <= 5; ++N) {
      const std::size_t C = (F + FeatureRanges::kChunk - 1) / FeatureRanges::kChunk;
      std::vector<uint64_t> cost(C);
      uint64_t total = 0, largest = 0;
      for (std::size_t c = 0; c < C; ++c) {
        cost[c] = 1 + rng() % (c < C / 4 ? 10000 : 100);  // heavy low chunks
        total += cost[c];
        largest = std::max(largest, cost[c]);
      }
      const std::vector<std::size_t> b = FeatureRanges::balanced(F, N, cost);
      ASSERT_EQ(b.size(), N + 1);
      expect_chunk_aligned_cover(b, F);
      for (std::size_t q = 0; q < N; ++q) {
        uint64_t share = 0;
        for (std::size_t c = b[q] / FeatureRanges::kChunk;
             c < (b[q + 1] + FeatureRanges::kChunk - 1) / FeatureRanges::kChunk; ++c)
          share += cost[c];
        EXPECT_LE(share, total / N + 2 * largest) << "F " << F << " N " << N << " rank " << q;
      }
    }
}

TEST(FeatureRanges, ChunkAlignedCover) {
  for (std::size_t F : {0u, 1u, 1023u, 1024u, 5000u, 100000u})
    for (std::size_t N = 1; N <= 5; ++N) {
      const std::vector<std::size_t> b = FeatureRanges::bounds(F, N);
      ASSERT_EQ(b.size(), N + 1);
      expect_chunk_aligned_cover(b, F);
    }
}

}  // namespace
}  // namespace septa::crf
