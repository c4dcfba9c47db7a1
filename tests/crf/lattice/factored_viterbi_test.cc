// factored_viterbi against Lattice::viterbi on the same potentials: the same labels, ties
// included, and the same score, bit for bit; and the factored output of
// cooccurrence_transitions against the [L][L] matrix it fills.
#include "crf/lattice/factored_viterbi.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "crf/lattice/cooccurrence.h"
#include "crf/lattice/lattice.h"

namespace septa::crf {
namespace {

// Random factored transitions over L labels for T items: with `ties`, small multiples of 1/2
// (exact sums, many ties); each listed cell above its rank-one value, or equal to it.
FactoredTransitions random_factors(std::size_t T, std::size_t L, bool ties, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-4.0, 0.0);
  std::uniform_int_distribution<int> half(-8, 0), cells(0, 4), gain(0, 4);
  std::uniform_int_distribution<std::size_t> label(0, L - 1);
  const auto value = [&] { return ties ? 0.5 * half(rng) : u(rng); };
  FactoredTransitions f;
  f.reset(L);
  for (std::size_t t = 1; t < T; ++t) {
    for (std::size_t a = 0; a < L; ++a) f.row.push_back(value());
    for (std::size_t b = 0; b < L; ++b) f.right.push_back(value());
    std::vector<char> used(L * L, 0);
    for (int k = cells(rng); k > 0; --k) {
      const std::size_t a = label(rng), b = label(rng);
      if (used[a * L + b]) continue;
      used[a * L + b] = 1;
      const double rank_one = f.row[(t - 1) * L + a] - f.right[(t - 1) * L + b];
      f.cells.push_back(static_cast<uint32_t>(a * L + b));
      f.values.push_back(rank_one + (ties ? 0.5 * gain(rng) : 3.0 * (u(rng) + 4.0)));
    }
    f.starts.push_back(static_cast<uint32_t>(f.cells.size()));
  }
  return f;
}

TEST(FactoredViterbi, SameLabelsAndScoreAsTheLatticeViterbi) {
  std::mt19937 rng(7);
  for (std::size_t L : {1, 2, 3, 5, 23, 64}) {
    for (std::size_t T : {1, 2, 3, 8, 20}) {
      for (int trial = 0; trial < 20; ++trial) {
        const bool ties = trial % 2 == 0;
        const FactoredTransitions f = random_factors(T, L, ties, rng);
        Lattice lattice;
        lattice.resize(T, L, /*per_position_transitions=*/true);
        std::uniform_int_distribution<int> half(-8, 0);
        std::uniform_real_distribution<double> u(-4.0, 0.0);
        std::vector<double> states(T * L);
        for (double& s : states) s = ties ? 0.5 * half(rng) : u(rng);
        for (std::size_t t = 0; t < T; ++t)
          for (std::size_t j = 0; j < L; ++j) lattice.state(t)[j] = states[t * L + j];
        for (std::size_t t = 1; t < T; ++t) {
          double* cr = lattice.transition(t);
          for (std::size_t a = 0; a < L; ++a)
            for (std::size_t b = 0; b < L; ++b)
              cr[a * L + b] = f.row[(t - 1) * L + a] - f.right[(t - 1) * L + b];
          for (std::size_t i = f.starts[t - 1]; i < f.starts[t]; ++i) cr[f.cells[i]] = f.values[i];
        }
        std::vector<int> want(T), got(T, -1);
        const double want_score = lattice.viterbi(want.data());
        double got_score = 0.0;
        ASSERT_TRUE(factored_viterbi(states.data(), T, L, f, got.data(), &got_score));
        EXPECT_EQ(got, want) << "L " << L << " T " << T << " trial " << trial;
        EXPECT_EQ(got_score, want_score) << "L " << L << " T " << T << " trial " << trial;
      }
    }
  }
}

TEST(FactoredViterbi, DeclinesWhatItCannotDecode) {
  std::mt19937 rng(3);
  FactoredTransitions f = random_factors(3, 65, false, rng);
  std::vector<double> states(3 * 65, -1.0);
  std::vector<int> labels(3);
  double score = 0.0;
  EXPECT_FALSE(factored_viterbi(states.data(), 3, 65, f, labels.data(), &score));  // L > 64
  f = random_factors(3, 4, false, rng);
  states.assign(3 * 4, -1.0);
  states[5] = std::nan("");
  EXPECT_FALSE(factored_viterbi(states.data(), 3, 4, f, labels.data(), &score));
  states[5] = -1.0;
  f.row[2] = -std::numeric_limits<double>::infinity();
  EXPECT_FALSE(factored_viterbi(states.data(), 3, 4, f, labels.data(), &score));
}

// cooccurrence_transitions with `factored`: row - right and the cells give the matrix it fills.
TEST(FactoredViterbi, CooccurrenceFactorsMatchTheFilledMatrix) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::size_t L : {2, 5, 23}) {
    for (int trial = 0; trial < 10; ++trial) {
      std::vector<double> unary_t(L), unary_next(L);
      for (double& x : unary_t) x = u(rng);
      for (double& x : unary_next) x = u(rng);
      std::vector<uint32_t> cells;
      std::vector<double> probabilities;
      for (uint32_t q = 0; q < L * L; ++q)
        if (u(rng) < 0.2) {
          cells.push_back(q);
          probabilities.push_back(u(rng) < 0.2 ? 1e-9 : u(rng));  // some at or below the floor
        }
      std::vector<double> cr(L * L);
      cooccurrence_transitions(cells.data(), probabilities.data(), cells.size(), unary_t.data(),
                               unary_next.data(), L, 1e-6, cr.data());
      FactoredTransitions f;
      f.reset(L);
      cooccurrence_transitions(cells.data(), probabilities.data(), cells.size(), unary_t.data(),
                               unary_next.data(), L, 1e-6, nullptr, nullptr, nullptr, &f);
      ASSERT_EQ(f.row.size(), L);
      ASSERT_EQ(f.starts.size(), 2u);
      std::vector<double> rebuilt(L * L);
      for (std::size_t a = 0; a < L; ++a)
        for (std::size_t b = 0; b < L; ++b) rebuilt[a * L + b] = f.row[a] - f.right[b];
      for (std::size_t i = 0; i < f.cells.size(); ++i) rebuilt[f.cells[i]] = f.values[i];
      EXPECT_EQ(rebuilt, cr) << "L " << L << " trial " << trial;
    }
  }
}

}  // namespace
}  // namespace septa::crf
