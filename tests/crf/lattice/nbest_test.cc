// K-best labellings against enumeration of all L^T paths.
#include "crf/lattice/nbest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace septa::crf {
namespace {

void fill_random(Lattice& lattice, std::size_t T, std::size_t L, bool per_position,
                 unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  lattice.reset(T, L, per_position);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j = 0; j < L; ++j) lattice.state(t)[j] = u(rng);
  std::vector<double> shared(L * L);
  for (std::size_t k = 0; k < (per_position ? T - 1 : 1); ++k) {
    double* w = per_position ? lattice.transition(k + 1) : shared.data();
    for (std::size_t q = 0; q < L * L; ++q) w[q] = u(rng);
  }
  if (!per_position) lattice.set_shared_transitions(shared.data());
}

TEST(NBest, MatchesTheTopOfAllPathsSortedByScore) {
  for (const auto& [T, L, per_position] :
       {std::tuple<std::size_t, std::size_t, bool>{1, 3, false}, {3, 3, false}, {4, 3, true},
        {3, 4, true}, {5, 2, false}}) {
    Lattice lattice;
    fill_random(lattice, T, L, per_position, static_cast<unsigned>(T * 10 + L));
    std::vector<double> scores;
    std::vector<int> y(T, 0);
    for (;;) {
      scores.push_back(lattice.path_score(y.data()));
      std::size_t t = T;
      while (t > 0 && ++y[t - 1] == static_cast<int>(L)) y[--t] = 0;
      if (t == 0) break;
    }
    std::sort(scores.rbegin(), scores.rend());
    for (std::size_t K : {std::size_t{1}, std::size_t{5}, scores.size() + 3}) {
      const std::vector<ScoredPath> best = nbest(lattice, K);
      ASSERT_EQ(best.size(), std::min(K, scores.size()));
      std::set<std::vector<int>> distinct;
      for (std::size_t k = 0; k < best.size(); ++k) {
        EXPECT_NEAR(best[k].score, scores[k], 1e-12) << "T=" << T << " L=" << L << " k=" << k;
        EXPECT_NEAR(lattice.path_score(best[k].labels.data()), best[k].score, 1e-12);
        distinct.insert(best[k].labels);
      }
      EXPECT_EQ(distinct.size(), best.size());
      std::vector<int> viterbi(T);
      lattice.viterbi(viterbi.data());
      EXPECT_NEAR(lattice.path_score(viterbi.data()), best[0].score, 1e-12);
    }
  }
}

}  // namespace
}  // namespace septa::crf
