// The MEMM scorer's lattice potentials against log P(j | i, x_t) computed directly from the
// features: a softmax over each context's successors, floored at log(floor).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "crf/lattice/lattice.h"
#include "crf/scoring/memm_scorer.h"

namespace septa::crf {
namespace {

TEST(MemmScorer, PotentialsAreFlooredLogSoftmaxOverSuccessors) {
  constexpr std::size_t A = 7, L = 4;
  constexpr double kFloor = 1e-3;
  std::mt19937 rng(11);
  Dataset data;
  for (std::size_t t = 0; t < 9; ++t) {
    for (std::size_t e = 0; e < 1 + rng() % 3; ++e)
      data.add_attribute(static_cast<int32_t>(rng() % A), 0.25f + static_cast<float>(rng() % 8) / 4);
    data.end_item(static_cast<int32_t>(rng() % L));
  }
  data.end_sequence(1.0);
  SparseFeaturesBuilder builder(A, L);
  for (std::size_t a = 0; a < A; ++a)
    for (std::size_t j = 0; j < L; ++j)
      if ((a + j) % 3 != 0) builder.add(static_cast<int32_t>(a), static_cast<int32_t>(j));
  const SparseFeatures states = builder.build(1, false);
  // [L+1][L]: row 1 allows one successor, row L (START) all but label 0, others two or three.
  std::vector<char> successors((L + 1) * L, 1);
  for (std::size_t j = 0; j < L; ++j) successors[1 * L + j] = j == 2;
  successors[L * L + 0] = 0;
  successors[0 * L + 3] = successors[2 * L + 1] = successors[3 * L + 0] = 0;
  MemmScorer scorer(A, L, states, successors, kFloor);
  std::normal_distribution<double> normal(0.0, 3.0);  // wide: some probabilities fall below the floor
  for (double& w : scorer.weights()) w = normal(rng);

  Lattice lattice;
  const SequenceView s = data.sequence(0);
  scorer.potentials(s, lattice);
  const double* w = scorer.weights().data();
  bool floored = false;
  for (std::size_t t = 0; t < s.T; ++t) {
    std::vector<double> state(L, 0.0);
    for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e)
      for (uint32_t f = states.offsets[s.attribute_ids[e]]; f < states.offsets[s.attribute_ids[e] + 1]; ++f)
        state[states.classes[f]] += w[f] * s.attribute_values[e];
    for (std::size_t row = 0; row < (t == 0 ? 1 : L); ++row) {
      const std::size_t context = t == 0 ? L : row;
      double z = 0.0;
      for (std::size_t j = 0; j < L; ++j)
        if (successors[context * L + j]) z += std::exp(state[j] + w[states.size() + context * L + j]);
      const double* got = t == 0 ? lattice.state(0) : lattice.transition(t) + row * L;
      for (std::size_t j = 0; j < L; ++j) {
        const double p = successors[context * L + j]
                             ? std::exp(state[j] + w[states.size() + context * L + j]) / z
                             : 0.0;
        floored = floored || (p > 0.0 && p < kFloor);
        EXPECT_NEAR(got[j], std::log(std::max(p, kFloor)), 1e-9) << "t " << t << " row " << row << " j " << j;
      }
    }
  }
  EXPECT_TRUE(floored) << "the weights should push some allowed successor below the floor";
}

// The scorer factors each row's normaliser through exp(s_t(j) - max s_t) exp(W[i][j] - max W[i]);
// state scores and transition weights pulling 1,000 nats apart underflow that product, and the
// row must then be normalised directly: here every allowed cell has the same score, -1,000.
TEST(MemmScorer, RowsWhoseFactoredNormaliserUnderflowsAreExact) {
  constexpr std::size_t A = 1, L = 2;
  Dataset data;
  for (std::size_t t = 0; t < 3; ++t) {
    data.add_attribute(0, 1.0f);
    data.end_item(0);
  }
  data.end_sequence(1.0);
  SparseFeaturesBuilder builder(A, L);
  builder.add(0, 1);
  const SparseFeatures states = builder.build(1, false);
  MemmScorer scorer(A, L, states, std::vector<char>((L + 1) * L, 1), 1e-6);
  std::vector<double>& w = scorer.weights();
  w[0] = -1000.0;  // s_t = (0, -1000)
  for (std::size_t i = 0; i <= L; ++i) {
    w[states.size() + i * L + 0] = -1000.0;  // W[i] = (-1000, 0)
    w[states.size() + i * L + 1] = 0.0;
  }
  Lattice lattice;
  scorer.potentials(data.sequence(0), lattice);
  for (std::size_t j = 0; j < L; ++j) EXPECT_NEAR(lattice.state(0)[j], std::log(0.5), 1e-12);
  for (std::size_t t = 1; t < 3; ++t)
    for (std::size_t cell = 0; cell < L * L; ++cell)
      EXPECT_NEAR(lattice.transition(t)[cell], std::log(0.5), 1e-12) << "t " << t << " cell " << cell;
}

}  // namespace
}  // namespace septa::crf
