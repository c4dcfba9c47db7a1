// The pair beam's candidate list (FactorScorer::beam_pairs, through
// SeparateScorer::candidate_pairs) against its definition evaluated cell by cell: the seen pairs
// (a, b) with P(a) >= beam max P at t and P(b) >= beam max P at t+1, in the order of a, then b.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "crf/scoring/separate_scorer.h"

namespace septa::crf {
namespace {

std::vector<int32_t> by_definition(const std::vector<int32_t>& first,
                                   const std::vector<int32_t>& second, std::size_t L,
                                   const std::vector<double>& ut, const std::vector<double>& un,
                                   double beam) {
  const double cut_t = beam * *std::max_element(ut.begin(), ut.end());
  const double cut_n = beam * *std::max_element(un.begin(), un.end());
  std::vector<int32_t> cls(L * L, -1);  // [L][L] class of (a, b), -1 unseen
  for (std::size_t k = 0; k < first.size(); ++k)
    cls[first[k] * L + second[k]] = static_cast<int32_t>(k);
  std::vector<int32_t> out;
  for (std::size_t a = 0; a < L; ++a)
    for (std::size_t b = 0; b < L; ++b)
      if (cls[a * L + b] >= 0 && !(ut[a] < cut_t) && un[b] >= cut_n) out.push_back(cls[a * L + b]);
  return out;
}

// Label counts on both sides of the 64-bit sets (1, 63, 64 use them; 65 and 70 the per-cell
// loop), pair classes in a shuffled order with about a third of the pairs unseen, and unary rows
// with exact ties: labels equal to the best, labels exactly at the cut (kept), labels one step
// below it (dropped) and zeros.
TEST(SeparateScorer, BeamPairsFollowTheDefinitionWithTiesAndUnseenPairs) {
  std::mt19937 rng(17);
  for (const std::size_t L : {1, 3, 63, 64, 65, 70}) {
    std::vector<int32_t> first, second;
    for (int32_t a = 0; a < static_cast<int32_t>(L); ++a)
      for (int32_t b = 0; b < static_cast<int32_t>(L); ++b)
        if (L == 1 || rng() % 3 != 0) {
          first.push_back(a);
          second.push_back(b);
        }
    std::vector<std::size_t> order(first.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<int32_t> f(order.size()), s(order.size());
    for (std::size_t k = 0; k < order.size(); ++k) {
      f[k] = first[order[k]];
      s[k] = second[order[k]];
    }
    for (const double beam : {0.01, 0.5, 1.0}) {
      const SeparateScorer scorer(1, L, f, s, 1e-6, beam, false);
      for (int trial = 0; trial < 20; ++trial) {
        const auto row = [&] {
          std::vector<double> p(L);
          std::uniform_real_distribution<double> u(0.0, 1.0);
          for (double& x : p) x = u(rng);
          const double best = *std::max_element(p.begin(), p.end());
          const double cut = beam * best;
          for (double& x : p) {
            const unsigned pick = rng() % 6;
            if (pick == 0) x = best;                            // a tie with the best
            if (pick == 1) x = cut;                             // exactly at the cut: kept
            if (pick == 2) x = std::nextafter(cut, 0.0);        // just below: dropped
            if (pick == 3) x = 0.0;
          }
          return p;
        };
        const std::vector<double> ut = row(), un = row();
        std::vector<int32_t> got;
        scorer.candidate_pairs(ut.data(), un.data(), got);
        EXPECT_EQ(got, by_definition(f, s, L, ut, un, beam))
            << "L " << L << " beam " << beam << " trial " << trial;
      }
    }
  }
}

}  // namespace
}  // namespace septa::crf
