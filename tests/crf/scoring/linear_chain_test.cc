#include "crf/scoring/linear_chain.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "crf/lattice/lattice.h"
#include "crf/random_data.h"

namespace septa::crf {
namespace {

// A chain over A attributes and L labels where attribute a fires with about a random share of
// the labels (rows of 1 to L features), and sequences up to max_T items of 1 to 40 attributes.
struct Chain {
  Dataset data;
  LinearChainScorer scorer;
};

Chain random_chain(std::size_t A, std::size_t L, std::size_t max_T, unsigned seed) {
  std::mt19937 rng(seed);
  SparseFeaturesBuilder builder(A, L);
  for (std::size_t a = 0; a < A; ++a) {
    const std::size_t share = 1 + rng() % L;
    for (std::size_t k = 0; k < L; ++k)
      if (k < share || rng() % L < share)
        builder.add(static_cast<int32_t>(a), static_cast<int32_t>((k + a) % L));
  }
  Chain chain{Dataset{}, LinearChainScorer(builder.build(1, false), L)};
  for (std::size_t n = 0; n < 6; ++n) {
    const std::size_t T = 1 + rng() % max_T;
    for (std::size_t t = 0; t < T; ++t) {
      const std::size_t entries = 1 + rng() % 40;
      for (std::size_t e = 0; e < entries; ++e)
        chain.data.add_attribute(static_cast<int32_t>(rng() % A), 1.0f);
      chain.data.end_item(static_cast<int32_t>(rng() % L));
    }
    chain.data.end_sequence(1.0);
  }
  std::vector<float>().swap(chain.data.attribute_values);  // no values: every value 1
  return chain;
}

// fill_listed gives the potentials of fill bit for bit and lists every entry's features in
// entry order with their classes, for label counts around the blocks of 8 it writes ids in.
TEST(LinearChainScorer, FillListedEqualsFillAndListsTheRowsInOrder) {
  for (const std::size_t L : {1, 3, 8, 9, 23, 40, 256}) {
    const Chain chain = random_chain(50, L, 30, static_cast<unsigned>(L));
    const LinearChainScorer& scorer = chain.scorer;
    ASSERT_TRUE(scorer.listed()) << L;
    const std::vector<double> w = testing::random_weights(scorer.feature_count(), 2.0, 7);
    Lattice plain, listed;
    FiredFeatures fired;  // kept across sequences, as the objective keeps it
    for (std::size_t n = 0; n < chain.data.size(); ++n) {
      const SequenceView s = chain.data.sequence(n);
      ASSERT_EQ(s.attribute_values, nullptr);
      scorer.fill(s, w.data(), plain);
      scorer.fill_listed(s, w.data(), listed, n + 1, fired);
      for (std::size_t t = 0; t < s.T; ++t)
        EXPECT_EQ(std::memcmp(plain.state(t), listed.state(t), sizeof(double) * L), 0) << L;
      EXPECT_EQ(std::memcmp(plain.transition(1), listed.transition(1), sizeof(double) * L * L), 0);
      const SparseFeatures& states = scorer.states();
      std::size_t i = 0;
      for (std::size_t t = 0; t < s.T; ++t) {
        EXPECT_EQ(fired.starts[t], i) << L;
        for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
          const int32_t a = s.attribute_ids[e];
          EXPECT_EQ(fired.lengths[e - s.item_offsets[0]], states.offsets[a + 1] - states.offsets[a]);
          for (uint32_t f = states.offsets[a]; f < states.offsets[a + 1]; ++f, ++i) {
            ASSERT_EQ(fired.ids[i], f) << L;
            ASSERT_EQ(fired.classes[i], states.classes[f]) << L;
          }
        }
      }
      EXPECT_EQ(fired.starts[s.T], i) << L;
    }
  }
}

// fill_masked gives the potentials of fill bit for bit (label counts around the registers of 8
// classes it keeps; 32-bit masks up to 32 labels, 64-bit ones for 33..64); on a processor
// without AVX-512 there are no masked rows.
template <typename Row>
void expect_masked_fill(const Chain& chain, std::size_t L, const std::vector<Row>& rows) {
  const LinearChainScorer& scorer = chain.scorer;
  ASSERT_EQ(rows.size(), scorer.states().A) << L;
  const std::vector<double> w = testing::random_weights(scorer.feature_count(), 2.0, 7);
  Lattice plain, masked;
  for (std::size_t n = 0; n < chain.data.size(); ++n) {
    const SequenceView s = chain.data.sequence(n);
    scorer.fill(s, w.data(), plain);
    scorer.fill_masked(s, w.data(), rows.data(), masked, n + 1);
    for (std::size_t t = 0; t < s.T; ++t)
      EXPECT_EQ(std::memcmp(plain.state(t), masked.state(t), sizeof(double) * L), 0) << L;
    EXPECT_EQ(std::memcmp(plain.transition(1), masked.transition(1), sizeof(double) * L * L), 0);
  }
}

TEST(LinearChainScorer, FillMaskedEqualsFill) {
  for (const std::size_t L : {1, 3, 8, 9, 16, 23, 32, 33, 40, 44, 57, 64, 65}) {
    const Chain chain = random_chain(50, L, 30, static_cast<unsigned>(L));
    const LinearChainScorer& scorer = chain.scorer;
    const std::vector<MaskedRange> rows = scorer.masked_rows();
    const std::vector<WideMaskedRange> wide = scorer.wide_masked_rows();
    if (L > 32) {
      EXPECT_TRUE(rows.empty()) << L;
    }
    if (L <= 32 || L > 64) {
      EXPECT_TRUE(wide.empty()) << L;
    }
    if (!have_avx512()) {
      EXPECT_TRUE(rows.empty() && wide.empty()) << L;
      continue;
    }
    if (L <= 32)
      expect_masked_fill(chain, L, rows);
    else if (L <= 64)
      expect_masked_fill(chain, L, wide);
  }
  if (!have_avx512()) GTEST_SKIP() << "no AVX-512: no masked rows to compare";
}

}  // namespace
}  // namespace septa::crf
