#include "crf/lattice/lattice.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "septa/error.h"

namespace septa::crf {
namespace {

// All L^T labellings in lexicographic order.
std::vector<std::vector<int>> all_paths(std::size_t T, std::size_t L) {
  std::vector<std::vector<int>> paths;
  std::vector<int> y(T, 0);
  while (true) {
    paths.push_back(y);
    std::size_t t = T;
    while (t > 0 && ++y[t - 1] == static_cast<int>(L)) y[--t] = 0;
    if (t == 0) break;
  }
  return paths;
}

void fill_random(Lattice& lattice, std::size_t T, std::size_t L, bool per_position, unsigned seed,
                 double scale = 2.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-scale, scale);
  lattice.reset(T, L, per_position);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j = 0; j < L; ++j) lattice.state(t)[j] = u(rng);
  const std::size_t matrices = per_position ? T - 1 : 1;
  std::vector<double> shared(L * L);
  for (std::size_t k = 0; k < matrices; ++k) {
    double* w = per_position ? lattice.transition(k + 1) : shared.data();
    for (std::size_t q = 0; q < L * L; ++q) w[q] = u(rng);
  }
  if (!per_position) lattice.set_shared_transitions(shared.data());
}

class LatticeBruteForce : public ::testing::TestWithParam<std::tuple<int, int, bool>> {};

TEST_P(LatticeBruteForce, MatchesEnumerationOfAllPaths) {
  const auto [T_int, L_int, per_position] = GetParam();
  const std::size_t T = T_int, L = L_int;
  for (unsigned seed = 1; seed <= 5; ++seed) {
    Lattice lattice;
    fill_random(lattice, T, L, per_position && T > 1, seed);
    const double log_z = lattice.forward_backward();

    const auto paths = all_paths(T, L);
    std::vector<double> scores;
    double best_score = -INFINITY;
    std::vector<int> best_path;
    double z = 0.0;
    for (const auto& y : paths) {
      const double s = lattice.path_score(y.data());
      scores.push_back(s);
      z += std::exp(s);
      if (s > best_score) {
        best_score = s;
        best_path = y;
      }
    }
    EXPECT_NEAR(log_z, std::log(z), 1e-10);
    std::vector<double> node(T * L, 0.0), edge(T * L * L, 0.0);
    double total = 0.0;
    for (std::size_t p = 0; p < paths.size(); ++p) {
      const double prob = std::exp(scores[p]) / z;
      total += prob;
      EXPECT_NEAR(scores[p] - log_z, std::log(prob), 1e-10);
      for (std::size_t t = 0; t < T; ++t) {
        node[t * L + paths[p][t]] += prob;
        if (t > 0) edge[(t * L + paths[p][t - 1]) * L + paths[p][t]] += prob;
      }
    }
    EXPECT_NEAR(total, 1.0, 1e-12);
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t j = 0; j < L; ++j)
        EXPECT_NEAR(lattice.node_marginal(t, j), node[t * L + j], 1e-10) << "t=" << t;
    for (std::size_t t = 1; t < T; ++t) {
      std::vector<double> got(L * L, 0.0);
      lattice.add_edge_marginals(t, 1.0, got.data());
      for (std::size_t q = 0; q < L * L; ++q) EXPECT_NEAR(got[q], edge[t * L * L + q], 1e-10);
    }
    std::vector<double> summed(L * L, 0.0), expected_sum(L * L, 0.0);
    lattice.add_edge_marginal_sums(2.0, summed.data());
    for (std::size_t t = 1; t < T; ++t)
      for (std::size_t q = 0; q < L * L; ++q) expected_sum[q] += 2.0 * edge[t * L * L + q];
    for (std::size_t q = 0; q < L * L; ++q) EXPECT_NEAR(summed[q], expected_sum[q], 1e-10);
    std::vector<int> viterbi(T);
    EXPECT_NEAR(lattice.viterbi(viterbi.data()), best_score, 1e-12);
    EXPECT_EQ(viterbi, best_path);
  }
}

INSTANTIATE_TEST_SUITE_P(SmallChains, LatticeBruteForce,
                         ::testing::Combine(::testing::Values(1, 2, 3, 4),
                                            ::testing::Values(1, 2, 3),
                                            ::testing::Bool()));

// Shared transitions run the register-blocked products over padded rows (16, 12, 8 or 4
// outputs at a time); per-position transitions the plain loops. The same matrix at every
// position gives the same results, for label counts around and above each block width.
TEST(Lattice, SharedTransitionsMatchTheSameMatrixPerPosition) {
  for (const std::size_t L : {1, 5, 13, 16, 22, 37})
    for (const std::size_t T : {1, 2, 9}) {
      std::mt19937 rng(static_cast<unsigned>(L * 100 + T));
      std::uniform_real_distribution<double> u(-3.0, 3.0);
      std::vector<double> trans(L * L), states(T * L);
      for (double& v : trans) v = u(rng);
      for (double& v : states) v = u(rng);
      Lattice shared, each;
      shared.reset(T, L, false);
      shared.set_shared_transitions(trans.data());
      each.reset(T, L, true);
      for (std::size_t t = 0; t < T; ++t) {
        std::copy(&states[t * L], &states[(t + 1) * L], shared.state(t));
        std::copy(&states[t * L], &states[(t + 1) * L], each.state(t));
        if (t > 0) std::copy(trans.begin(), trans.end(), each.transition(t));
      }
      const double log_z = shared.forward_backward();
      EXPECT_NEAR(log_z, each.forward_backward(), 1e-12 * std::fabs(log_z)) << L << " " << T;
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t j = 0; j < L; ++j)
          ASSERT_NEAR(shared.node_marginal(t, j), each.node_marginal(t, j), 1e-12) << L << T;
      std::vector<double> a(L * L, 0.0), b(L * L, 0.0);
      shared.add_edge_marginal_sums(0.5, a.data());
      each.add_edge_marginal_sums(0.5, b.data());
      double total = 0.0;
      for (std::size_t q = 0; q < L * L; ++q) {
        ASSERT_NEAR(a[q], b[q], 1e-12) << L << " " << T << " " << q;
        total += a[q];
      }
      EXPECT_NEAR(total, 0.5 * static_cast<double>(T - 1), 1e-12);  // each edge sums to 1
    }
}

// Viterbi against the plain recursion, label by label: the same path (ties to the lowest
// previous label, and to the lowest last label) and the bit-identical score, for label counts
// around the 4-label blocks of the vectorised step (whole blocks, blocks and a remainder, a
// remainder alone), shared and per-position transitions, and potentials of a few integer values
// so that ties are everywhere.
TEST(Lattice, ViterbiEqualsThePlainRecursionWithTies) {
  for (std::size_t L : {1, 2, 3, 4, 5, 7, 8, 9, 22, 23}) {
    for (bool per_position : {false, true}) {
      for (bool ties : {false, true}) {
        const std::size_t T = 17;
        Lattice lattice;
        fill_random(lattice, T, L, per_position, static_cast<unsigned>(L * 4 + per_position), 3.0);
        if (ties) {
          std::mt19937 rng(static_cast<unsigned>(L));
          for (std::size_t t = 0; t < T; ++t)
            for (std::size_t j = 0; j < L; ++j) lattice.state(t)[j] = static_cast<double>(rng() % 3);
          std::vector<double> shared(L * L);
          for (std::size_t t = 1; t < (per_position ? T : 2); ++t) {
            double* w = per_position ? lattice.transition(t) : shared.data();
            for (std::size_t q = 0; q < L * L; ++q) w[q] = static_cast<double>(rng() % 3);
          }
          if (!per_position) lattice.set_shared_transitions(shared.data());
        }
        std::vector<double> d(lattice.state(0), lattice.state(0) + L), next(L);
        std::vector<int> back(T * L, 0);
        for (std::size_t t = 1; t < T; ++t) {
          const double* w = static_cast<const Lattice&>(lattice).transition(t);
          for (std::size_t j = 0; j < L; ++j) {
            double best = d[0] + w[j];
            for (std::size_t i = 1; i < L; ++i)
              if (d[i] + w[i * L + j] > best) {
                best = d[i] + w[i * L + j];
                back[t * L + j] = static_cast<int>(i);
              }
            next[j] = best + lattice.state(t)[j];
          }
          d = next;
        }
        std::vector<int> expected(T);
        int y = static_cast<int>(std::max_element(d.begin(), d.end()) - d.begin());
        const double expected_score = d[y];
        for (std::size_t t = T; t-- > 0;) {
          expected[t] = y;
          if (t > 0) y = back[t * L + y];
        }
        std::vector<int> got(T);
        const double score = lattice.viterbi(got.data());
        EXPECT_EQ(got, expected) << "L " << L << " per position " << per_position << " ties " << ties;
        EXPECT_EQ(score, expected_score) << "L " << L;
      }
    }
  }
}

TEST(Lattice, LongChainWithLargePotentialsStaysFinite) {
  // 5,000 positions with potentials up to +-800: exp() of these would overflow unshifted.
  Lattice lattice;
  fill_random(lattice, 5000, 5, /*per_position=*/false, 7, /*scale=*/800.0);
  const double log_z = lattice.forward_backward();
  EXPECT_TRUE(std::isfinite(log_z));
  std::vector<int> best(5000);
  const double best_score = lattice.viterbi(best.data());
  EXPECT_GE(log_z, best_score - 1e-6);  // Z >= exp(best path)
  for (std::size_t t = 0; t < 5000; t += 499) {
    double sum = 0.0;
    for (std::size_t j = 0; j < 5; ++j) {
      EXPECT_TRUE(std::isfinite(lattice.node_marginal(t, j)));
      sum += lattice.node_marginal(t, j);
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
}

TEST(Lattice, ExtremePotentialsFallBackToLogDomainAndStayExact) {
  // Potentials of +-900 overflow the scaled forward-backward, so these runs take the log-domain
  // path; log Z, every node marginal, every edge marginal and their sums are checked against
  // the enumeration of all paths, done with a log-sum-exp shift.
  const std::size_t T = 4, L = 3;
  for (bool per_position : {false, true}) {
    for (unsigned seed = 3; seed <= 5; ++seed) {
      Lattice lattice;
      fill_random(lattice, T, L, per_position, seed, /*scale=*/900.0);
      const double log_z = lattice.forward_backward();
      const auto paths = all_paths(T, L);
      double m = -INFINITY;
      std::vector<double> scores;
      for (const auto& y : paths) {
        scores.push_back(lattice.path_score(y.data()));
        m = std::max(m, scores.back());
      }
      double sum = 0.0;
      for (double s : scores) sum += std::exp(s - m);
      const double expected_log_z = m + std::log(sum);
      EXPECT_NEAR(log_z, expected_log_z, 1e-9);
      std::vector<double> node(T * L, 0.0), edge(T * L * L, 0.0);  // [T][L], [T][L][L]
      for (std::size_t p = 0; p < paths.size(); ++p) {
        const double prob = std::exp(scores[p] - expected_log_z);
        for (std::size_t t = 0; t < T; ++t) {
          node[t * L + paths[p][t]] += prob;
          if (t > 0) edge[(t * L + paths[p][t - 1]) * L + paths[p][t]] += prob;
        }
      }
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t j = 0; j < L; ++j)
          EXPECT_NEAR(lattice.node_marginal(t, j), node[t * L + j], 1e-9)
              << "per_position=" << per_position << " seed=" << seed << " t=" << t;
      std::vector<double> expected_sum(L * L, 0.0);
      for (std::size_t t = 1; t < T; ++t) {
        std::vector<double> got(L * L, 0.0);
        lattice.add_edge_marginals(t, 1.0, got.data());
        for (std::size_t q = 0; q < L * L; ++q) {
          EXPECT_NEAR(got[q], edge[t * L * L + q], 1e-9) << "t=" << t << " q=" << q;
          expected_sum[q] += edge[t * L * L + q];
        }
      }
      std::vector<double> summed(L * L, 0.0);
      lattice.add_edge_marginal_sums(1.0, summed.data());
      for (std::size_t q = 0; q < L * L; ++q) EXPECT_NEAR(summed[q], expected_sum[q], 1e-9);
    }
  }
}

// A lattice of T positions with states from `state_seed` (one position spanning 1800 nats when
// `extreme`: the log-domain pass) and shared transitions from `trans_seed`.
Lattice chain(std::size_t T, std::size_t L, unsigned state_seed, unsigned trans_seed,
              bool extreme = false) {
  Lattice lattice;
  fill_random(lattice, T, L, false, trans_seed);
  std::mt19937 rng(state_seed);
  std::uniform_real_distribution<double> u(-3.0, 3.0);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j = 0; j < L; ++j) lattice.state(t)[j] = u(rng);
  if (extreme) lattice.state(T / 2)[0] = 1800.0;
  return lattice;
}

// forward_backward_pair gives each lattice the bits of forward_backward alone: log Z, node
// marginals and edge-marginal sums, for label counts around the vector widths, lengths equal
// and not, one of the two in the log domain, and transitions that differ (no interleaving).
TEST(Lattice, ForwardBackwardPairGivesTheBitsOfEachAlone) {
  auto same_bits = [](const double* a, const double* b, std::size_t n) {
    return std::memcmp(a, b, sizeof(double) * n) == 0;
  };
  const std::pair<std::size_t, std::size_t> lengths[] = {{1, 1}, {1, 5}, {7, 3}, {12, 12}, {2, 9}};
  int cases = 0;
  for (const std::size_t L : {1, 3, 8, 9, 23, 40}) {
    for (const auto& [Tx, Ty] : lengths) {
      for (int variant = 0; variant < 4; ++variant) {
        const bool extreme_x = variant == 1, extreme_y = variant == 2;
        const unsigned trans_y = variant == 3 ? 99 : 7;  // 3: other transitions
        Lattice x = chain(Tx, L, 1 + static_cast<unsigned>(L), 7, extreme_x && Tx > 1);
        Lattice y = chain(Ty, L, 2 + static_cast<unsigned>(L), trans_y, extreme_y && Ty > 1);
        Lattice x_alone = x, y_alone = y;
        const double zx = x_alone.forward_backward(), zy = y_alone.forward_backward();
        const std::pair<double, double> z = Lattice::forward_backward_pair(x, y);
        EXPECT_TRUE(same_bits(&z.first, &zx, 1)) << L << " " << Tx << " " << variant;
        EXPECT_TRUE(same_bits(&z.second, &zy, 1)) << L << " " << Ty << " " << variant;
        for (std::size_t t = 0; t < Tx; ++t)
          EXPECT_TRUE(same_bits(x.node_marginals(t), x_alone.node_marginals(t), L)) << L << " " << t;
        for (std::size_t t = 0; t < Ty; ++t)
          EXPECT_TRUE(same_bits(y.node_marginals(t), y_alone.node_marginals(t), L)) << L << " " << t;
        std::vector<double> sums[4];
        for (auto& v : sums) v.assign(L * L, 0.0);
        x.add_edge_marginal_sums(0.5, sums[0].data());
        x_alone.add_edge_marginal_sums(0.5, sums[1].data());
        y.add_edge_marginal_sums(0.5, sums[2].data());
        y_alone.add_edge_marginal_sums(0.5, sums[3].data());
        EXPECT_TRUE(same_bits(sums[0].data(), sums[1].data(), L * L)) << L << " " << variant;
        EXPECT_TRUE(same_bits(sums[2].data(), sums[3].data(), L * L)) << L << " " << variant;
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 6 * 5 * 4);
}

TEST(Lattice, NonFinitePotentialsAreANumericalError) {
  for (double bad : {NAN, INFINITY}) {
    Lattice lattice;
    fill_random(lattice, 3, 2, /*per_position=*/true, 1);
    lattice.state(1)[0] = bad;
    EXPECT_THROW(lattice.forward_backward(), NumericalError) << bad;
  }
}

// A repeated nonzero key keeps the transitions without comparing them (the caller's promise);
// a new key, or none, compares and takes changed ones.
TEST(Lattice, TransitionKeysSkipTheComparisonOnlyWhenRepeated) {
  const std::vector<double> first = {0.0, 1.0, -1.0, 2.0}, second = {3.0, -2.0, 0.5, 0.0};
  auto log_z = [](const std::vector<double>& trans, uint64_t key, Lattice& lattice) {
    lattice.reset(2, 2, false);
    lattice.set_shared_transitions(trans.data(), key);
    lattice.state(0)[0] = 0.3;
    lattice.state(1)[1] = -0.7;
    return lattice.forward_backward();
  };
  Lattice fresh, keyed;
  const double z1 = log_z(first, 0, fresh), z2 = log_z(second, 0, fresh);
  ASSERT_NE(z1, z2);
  EXPECT_EQ(log_z(first, 7, keyed), z1);
  EXPECT_EQ(log_z(first, 7, keyed), z1);
  EXPECT_EQ(log_z(second, 7, keyed), z1);  // same key: the promise holds the first matrix
  EXPECT_EQ(log_z(second, 8, keyed), z2);  // a new key compares and takes the new one
  EXPECT_EQ(log_z(first, 0, keyed), z1);   // no key: always compared
}

TEST(Lattice, SharedTransitionsSurviveResetWithSameLabelCount) {
  Lattice a, b;
  fill_random(a, 3, 3, false, 11);
  const double expected = a.forward_backward();
  std::vector<double> states(9);
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t j = 0; j < 3; ++j) states[t * 3 + j] = a.state(t)[j];
  a.reset(3, 3, false);  // keeps the shared transitions
  for (std::size_t t = 0; t < 3; ++t)
    for (std::size_t j = 0; j < 3; ++j) a.state(t)[j] = states[t * 3 + j];
  EXPECT_DOUBLE_EQ(a.forward_backward(), expected);
}

}  // namespace
}  // namespace septa::crf
