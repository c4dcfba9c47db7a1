// Exactness of the co-occurrence rate factorisation: with factors equal to the exact marginals
// of a chain distribution, the factor product reproduces P(y|x) for every labelling.
#include "crf/lattice/cooccurrence.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "crf/lattice/lattice.h"

namespace septa::crf {
namespace {

TEST(Cooccurrence, ExactMarginalsReproduceEveryPathProbability) {
  for (std::size_t T : {1, 2, 3, 5}) {
    for (std::size_t L : {2, 3}) {
      // An arbitrary chain distribution: a random linear-chain model with per-position
      // transitions (an HMM's posterior is of this form).
      std::mt19937 rng(static_cast<unsigned>(T * 10 + L));
      std::uniform_real_distribution<double> u(-2.0, 2.0);
      Lattice chain;
      chain.reset(T, L, /*per_position_transitions=*/true);
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t j = 0; j < L; ++j) chain.state(t)[j] = u(rng);
      for (std::size_t t = 1; t < T; ++t)
        for (std::size_t q = 0; q < L * L; ++q) chain.transition(t)[q] = u(rng);
      const double log_z = chain.forward_backward();

      std::vector<double> unary(T * L), pairwise((T > 0 ? T - 1 : 0) * L * L, 0.0);
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t j = 0; j < L; ++j) unary[t * L + j] = chain.node_marginal(t, j);
      for (std::size_t t = 1; t < T; ++t)
        chain.add_edge_marginals(t, 1.0, &pairwise[(t - 1) * L * L]);

      Lattice factored;
      fill_cooccurrence_lattice(unary.data(), pairwise.data(), T, L, 1e-300, factored);
      // Every labelling: log of the factor product == log P(y|x) of the chain.
      std::vector<int> y(T, 0);
      std::size_t paths = 0;
      while (true) {
        EXPECT_NEAR(factored.path_score(y.data()), chain.path_score(y.data()) - log_z, 1e-9)
            << "T=" << T << " L=" << L << " path " << paths;
        ++paths;
        std::size_t t = T;
        while (t > 0 && ++y[t - 1] == static_cast<int>(L)) y[--t] = 0;
        if (t == 0) break;
      }
      EXPECT_EQ(paths, static_cast<std::size_t>(std::pow(L, T)));
      // No partition function is needed: the product is already normalised.
      EXPECT_NEAR(factored.forward_backward(), 0.0, 1e-9);
    }
  }
}

TEST(Cooccurrence, ZeroProbabilitiesNeverGiveInfinityOrNan) {
  const std::size_t T = 3, L = 3;
  std::vector<double> unary = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  std::vector<double> pairwise(2 * L * L, 0.0);
  pairwise[0 * L + 1] = 1.0;               // only (0,1) at the first edge
  pairwise[L * L + 1 * L + 2] = 1.0;       // only (1,2) at the second
  Lattice lattice;
  fill_cooccurrence_lattice(unary.data(), pairwise.data(), T, L, 1e-6, lattice);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j = 0; j < L; ++j) EXPECT_TRUE(std::isfinite(lattice.state(t)[j]));
  for (std::size_t t = 1; t < T; ++t)
    for (std::size_t q = 0; q < L * L; ++q) EXPECT_TRUE(std::isfinite(lattice.transition(t)[q]));
  std::vector<int> best(T);
  lattice.viterbi(best.data());
  EXPECT_EQ(best, (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(std::isfinite(lattice.forward_backward()));
}

// The sparse computation against the definition, evaluated densely: p = max(table, floor)
// renormalised, margins bounded below by the unary predictions, log CR = log p - log margins.
TEST(Cooccurrence, SparseTransitionsMatchTheDenseDefinition) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (const std::size_t L : {1, 2, 5, 17}) {
    for (const double floor : {1e-6, 1e-2}) {
      std::vector<double> table(L * L, 0.0), unary_t(L), unary_next(L);
      for (double& v : unary_t) v = u(rng);
      for (double& v : unary_next) v = u(rng) < 0.3 ? 0.0 : u(rng);
      std::vector<uint32_t> cells;
      std::vector<double> probabilities;
      for (std::size_t q = 0; q < L * L; ++q) {
        const double r = u(rng);
        if (r < 0.5) continue;  // unlisted: probability 0
        // Some listed entries at or below the floor, which must count as the floor.
        table[q] = r < 0.6 ? floor * u(rng) : r < 0.65 ? floor : u(rng) * 3.0;
        cells.push_back(static_cast<uint32_t>(q));
        probabilities.push_back(table[q]);
      }
      std::vector<double> cr(L * L, NAN);
      cooccurrence_transitions(cells.data(), probabilities.data(), cells.size(), unary_t.data(),
                               unary_next.data(), L, floor, cr.data());
      double total = 0.0;
      for (double v : table) total += std::max(v, floor);
      std::vector<double> left(L, 0.0), right(L, 0.0);
      for (std::size_t a = 0; a < L; ++a)
        for (std::size_t b = 0; b < L; ++b) {
          left[a] += std::max(table[a * L + b], floor) / total;
          right[b] += std::max(table[a * L + b], floor) / total;
        }
      for (std::size_t a = 0; a < L; ++a)
        for (std::size_t b = 0; b < L; ++b) {
          const double expected = std::log(std::max(table[a * L + b], floor) / total) -
                                  std::log(std::max(left[a], unary_t[a])) -
                                  std::log(std::max(right[b], unary_next[b]));
          EXPECT_NEAR(cr[a * L + b], expected, 1e-12 * (1 + std::abs(expected)))
              << L << " " << floor << " " << a << " " << b;
        }
    }
  }
}

}  // namespace
}  // namespace septa::crf
