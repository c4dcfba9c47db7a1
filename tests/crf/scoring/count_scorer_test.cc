// The count scorer's lattice against its definition (count_scorer.h) computed directly: unary
// P(k | x) from the geometric mean of the attribute experts; per position the pairwise softmax
// over the seen label pairs whose labels both pass the unary beam (kPairBeam of the best; all
// pairs when none passes; a lone pair gets 1); then the co-occurrence rates of the dense table.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "crf/lattice/cooccurrence.h"
#include "crf/lattice/lattice.h"
#include "crf/scoring/count_scorer.h"

namespace septa::crf {
namespace {

// log P(k | items [t, t+span)) up to a constant: log prior + mean of the experts' ratios.
std::vector<double> expert_scores(const SequenceView& s, std::size_t t, int span, std::size_t A,
                                  const SparseFeatures& features, const std::vector<double>& ratio,
                                  const std::vector<double>& log_prior) {
  std::vector<double> sum(log_prior.size(), 0.0);
  std::size_t experts = 0;
  for (int k = 0; k < span; ++k)
    for (std::size_t e = s.item_offsets[t + k]; e < s.item_offsets[t + k + 1]; ++e, ++experts) {
      const int32_t a = s.attribute_ids[e] + static_cast<int32_t>(k * A);
      for (uint32_t f = features.offsets[a]; f < features.offsets[a + 1]; ++f)
        sum[features.classes[f]] += ratio[f];
    }
  for (std::size_t c = 0; c < sum.size(); ++c)
    sum[c] = log_prior[c] + (experts ? sum[c] / static_cast<double>(experts) : 0.0);
  return sum;
}

std::vector<double> softmax(const std::vector<double>& s) {
  const double m = *std::max_element(s.begin(), s.end());
  std::vector<double> p(s.size());
  double z = 0.0;
  for (std::size_t i = 0; i < s.size(); ++i) z += p[i] = std::exp(s[i] - m);
  for (double& x : p) x /= z;
  return p;
}

// A random count scorer over A attributes and L labels, its pair classes every (a, b) but
// (3, 0) and (1, 1), checked against the definition on the sequences of `data`, scored one
// after the other with the same scorer (its per-thread scratch reused across lengths).
// Returns the positions that kept a lone pair and those that kept several.
std::pair<std::size_t, std::size_t> check_against_definition(std::size_t A, std::size_t L,
                                                             const Dataset& data,
                                                             unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> first, second;
  for (int32_t a = 0; a < static_cast<int32_t>(L); ++a)
    for (int32_t b = 0; b < static_cast<int32_t>(L); ++b)
      if (!(a == 3 && b == 0) && !(a == 1 && b == 1)) {
        first.push_back(a);
        second.push_back(b);
      }
  const std::size_t K = first.size();
  SparseFeaturesBuilder ub(A, L), pb(2 * A, K);
  for (std::size_t a = 0; a < A; ++a)
    for (std::size_t k = 0; k < L; ++k)
      if ((a + k) % 3 != 1) ub.add(static_cast<int32_t>(a), static_cast<int32_t>(k));
  for (std::size_t a = 0; a < 2 * A; ++a)
    for (std::size_t k = 0; k < K; ++k)
      if ((a * 7 + k) % 4 == 0) pb.add(static_cast<int32_t>(a), static_cast<int32_t>(k));
  const SparseFeatures unary = ub.build(1, false), pairwise = pb.build(1, false);
  // Wide ratios: some labels fall out of the beam, some positions keep one pair or all.
  std::normal_distribution<double> normal(0.0, 6.0);
  std::vector<double> unary_ratio(unary.size()), pair_ratio(pairwise.size());
  for (double& r : unary_ratio) r = normal(rng);
  for (double& r : pair_ratio) r = normal(rng);
  std::vector<double> label_prior(L), pair_prior(K);
  for (double& p : label_prior) p = std::log(0.1 + (rng() % 10) / 10.0);
  for (double& p : pair_prior) p = std::log(0.1 + (rng() % 10) / 10.0);
  constexpr double kFloor = 1e-6;
  CountScorer scorer(A, L, unary, unary_ratio, label_prior, pairwise, pair_ratio, pair_prior,
                     first, second, kFloor);
  std::size_t lone = 0, several = 0;
  for (std::size_t n = 0; n < data.size(); ++n) {
    const SequenceView s = data.sequence(n);
    const std::size_t T = s.T;
    Lattice got;
    scorer.potentials(s, got);

    std::vector<double> u(T * L), table((T > 0 ? T - 1 : 0) * L * L, 0.0);
    for (std::size_t t = 0; t < T; ++t) {
      const std::vector<double> p =
          softmax(expert_scores(s, t, 1, A, unary, unary_ratio, label_prior));
      std::copy(p.begin(), p.end(), &u[t * L]);
    }
    for (std::size_t t = 0; t + 1 < T; ++t) {
      const double* ut = &u[t * L];
      const double* un = &u[(t + 1) * L];
      const double cut_t = CountScorer::kPairBeam * *std::max_element(ut, ut + L);
      const double cut_n = CountScorer::kPairBeam * *std::max_element(un, un + L);
      std::vector<std::size_t> allowed;
      for (std::size_t k = 0; k < K; ++k)
        if (ut[first[k]] >= cut_t && un[second[k]] >= cut_n) allowed.push_back(k);
      if (allowed.empty())
        for (std::size_t k = 0; k < K; ++k) allowed.push_back(k);
      (allowed.size() == 1 ? lone : several) += 1;
      const std::vector<double> scores =
          expert_scores(s, t, 2, A, pairwise, pair_ratio, pair_prior);
      std::vector<double> listed;
      for (std::size_t k : allowed) listed.push_back(scores[k]);
      const std::vector<double> p = softmax(listed);
      for (std::size_t i = 0; i < allowed.size(); ++i)
        table[t * L * L + first[allowed[i]] * L + second[allowed[i]]] = p[i];
    }
    Lattice want;
    fill_cooccurrence_lattice(u.data(), table.data(), T, L, kFloor, want);
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t j = 0; j < L; ++j)
        EXPECT_NEAR(got.state(t)[j], want.state(t)[j], 1e-9)
            << "L " << L << " sequence " << n << " t " << t << " j " << j;
    for (std::size_t t = 1; t < T; ++t)
      for (std::size_t c = 0; c < L * L; ++c)
        EXPECT_NEAR(got.transition(t)[c], want.transition(t)[c], 1e-9)
            << "L " << L << " sequence " << n << " t " << t << " cell " << c;
  }
  return {lone, several};
}

// Sequences of the given lengths, 1-3 random attributes per item.
Dataset random_sequences(std::size_t A, const std::vector<std::size_t>& lengths, unsigned seed) {
  std::mt19937 rng(seed);
  Dataset data;
  for (std::size_t T : lengths) {
    for (std::size_t t = 0; t < T; ++t) {
      for (std::size_t e = 0; e < 1 + rng() % 3; ++e)
        data.add_attribute(static_cast<int32_t>(rng() % A), 1.0f);
      data.end_item(0);
    }
    data.end_sequence(1.0);
  }
  return data;
}

TEST(CountScorer, PotentialsFollowTheDefinitionWithThePairBeam) {
  constexpr std::size_t A = 6, L = 4;
  const auto [lone, several] = check_against_definition(A, L, random_sequences(A, {12}, 5), 5);
  EXPECT_GT(several, 0u);
  (void)lone;
}

// The features of all positions are looked up before the sums (per-thread ranges): sequences
// of different lengths scored in turn, a long one after short ones and the other way round,
// each against the definition; with 70 labels the beam's pairs come from the per-cell loop
// instead of the 64-bit label sets.
TEST(CountScorer, SequencesInTurnAndMoreThan64LabelsFollowTheDefinition) {
  constexpr std::size_t A = 6;
  const Dataset data = random_sequences(A, {1, 2, 30, 3, 1, 17, 2}, 9);
  for (const std::size_t L : {4, 5, 70}) {
    const auto [lone, several] = check_against_definition(A, L, data, 11 + L);
    EXPECT_GT(several, 0u) << L;
    EXPECT_GT(lone + several, 40u) << L;
  }
}

}  // namespace
}  // namespace septa::crf
