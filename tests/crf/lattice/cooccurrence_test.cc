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

}  // namespace
}  // namespace septa::crf
