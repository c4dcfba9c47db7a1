// Tied pair features of -a separate: which templates pair up, which attributes tie (checked
// against the edges by brute force), and that training tied gives the untied model up to
// rounding.
#include "crf/algorithms/pair_ties.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "crf/algorithms/local_training.h"
#include "crf/features/encoder.h"
#include "crf/fixtures.h"
#include "septa/crf/model.h"
#include "septa/crf/trainer.h"

namespace septa::crf {
namespace {

std::vector<ColumnSentence> toy(std::size_t n, unsigned seed) {
  std::istringstream in(testing::toy_chunking_corpus(n, seed));
  return read_columns(in, "toy.txt");
}

TEST(PairTies, ShiftPartnersOfTheChunkingTemplate) {
  // U00..U06 (words), U10..U18, U20..U22 (POS): each of offsets -2..1 pairs with the next one.
  const std::vector<int> expected = {1, 2, 3, 4, -1, 6, -1, 8, 9, 10, 11, -1, 13, 14, 15, -1,
                                     17, 18, -1};
  EXPECT_EQ(FeatureTemplate::default_chunking().unigram_shift_partners(), expected);
  // Another column, other literals, a row shifted by 2 or the wrong way: no partner.
  const FeatureTemplate other = FeatureTemplate::parse(
      "U0:%x[0,0]\nU1:%x[1,1]\nU2:%x[0,0]/a\nU3:%x[1,0]/b\nU4:%x[-2,0]\nU5:%x[1,0]\n", "t");
  EXPECT_EQ(other.unigram_shift_partners(), (std::vector<int>{5, -1, -1, -1, -1, -1}));
}

TEST(PairTies, TiedAttributesComeWithTheirPartnersOnEveryEdge) {
  Encoder encoder{FeatureTemplate::default_chunking()};
  Dataset data;
  encoder.encode_training(toy(120, 3), data);
  const std::size_t A = encoder.attributes().size(), L = encoder.labels().size();
  const LabelPairs pairs = observed_pairs(data, L);
  const std::vector<LocalInstance> edges = edge_instances(data, pairs.pair_class, L);
  const SparseFeatures features = instance_features(data, edges, A, pairs.first.size(), 2, 1, false);
  for (int threads : {1, 3}) {
    const PairTies ties = find_pair_ties(data, encoder.feature_template(), A, features, nullptr,
                                         threads);
    ASSERT_EQ(ties.tied.size(), 2 * A);
    // Brute force: b (at t+1) is tied to p exactly when, over all edges, b is at t+1 iff p is
    // at t, b's template has a partner, and b has features; every such b is tied.
    const std::vector<int> partner = encoder.feature_template().unigram_shift_partners();
    const std::size_t U = partner.size();
    std::set<std::pair<int32_t, int32_t>> seen;  // (b, p) on some edge
    for (std::size_t n = 0; n < data.size(); ++n)
      for (std::size_t i = data.sequence_offsets[n]; i + 1 < data.sequence_offsets[n + 1]; ++i)
        for (std::size_t u = 0; u < U; ++u)
          if (partner[u] >= 0)
            seen.insert({data.attribute_ids[data.item_offsets[i + 1] + u],
                         data.attribute_ids[data.item_offsets[i] + partner[u]]});
    std::size_t expected = 0;
    for (const auto& [b, p] : seen) {
      ++expected;
      ASSERT_EQ(ties.tied[A + b], p) << encoder.attributes().name(b);
      // the same text after the template's id
      const std::string& bn = encoder.attributes().name(b);
      const std::string& pn = encoder.attributes().name(p);
      EXPECT_EQ(bn.substr(bn.find(':')), pn.substr(pn.find(':')));
      for (std::size_t n = 0; n < data.size(); ++n)
        for (std::size_t i = data.sequence_offsets[n]; i + 1 < data.sequence_offsets[n + 1]; ++i) {
          bool has_b = false, has_p = false;
          for (std::size_t e = data.item_offsets[i + 1]; e < data.item_offsets[i + 2]; ++e)
            has_b = has_b || data.attribute_ids[e] == b;
          for (std::size_t e = data.item_offsets[i]; e < data.item_offsets[i + 1]; ++e)
            has_p = has_p || data.attribute_ids[e] == p;
          ASSERT_EQ(has_b, has_p) << bn << " / " << pn;
        }
    }
    EXPECT_GT(expected, 100u);
    EXPECT_EQ(ties.count, expected);
    for (std::size_t a = 0; a < A; ++a) EXPECT_EQ(ties.tied[a], -1);  // none at t
    // Without the tied ranges, and back: the weights of a tied range are its partner's.
    const SparseFeatures trained = without_tied(features, ties.tied, threads);
    EXPECT_EQ(trained.A, features.A);
    std::vector<double> w(trained.size() + 2);
    for (std::size_t f = 0; f < w.size(); ++f) w[f] = static_cast<double>(f) + 0.5;
    const std::vector<double> back = untied_weights(features, trained, ties.tied, w, threads);
    ASSERT_EQ(back.size(), features.size() + 2);
    for (std::size_t a = 0; a < 2 * A; ++a) {
      const std::size_t from = ties.tied[a] < 0 ? a : static_cast<std::size_t>(ties.tied[a]);
      ASSERT_EQ(features.offsets[a + 1] - features.offsets[a],
                trained.offsets[from + 1] - trained.offsets[from]);
      for (uint32_t k = 0; k < features.offsets[a + 1] - features.offsets[a]; ++k)
        ASSERT_EQ(back[features.offsets[a] + k], w[trained.offsets[from] + k]);
    }
    EXPECT_EQ(back[features.size()], w[trained.size()]);
    EXPECT_EQ(back[features.size() + 1], w[trained.size() + 1]);
  }
}

// The largest difference of the pair biases (trained along with the tied features) and of the
// marginals on `test`.
std::pair<double, double> differences(const Model& x, const Model& y,
                                      const std::vector<ColumnSentence>& test) {
  const auto fx = x.transition_features(), fy = y.transition_features();
  EXPECT_EQ(fx.size(), fy.size());
  double biases = 0.0, size = 0.0, marginals = 0.0;
  for (std::size_t i = 0; i < fx.size() && i < fy.size(); ++i) {
    biases = std::max(biases, std::abs(fx[i].weight - fy[i].weight));
    size = std::max(size, std::abs(fy[i].weight));
  }
  EXPECT_GT(size, 1e-2);  // (the pairwise factor learned something)
  for (const ColumnSentence& s : test) {
    const TagResult a = x.tag(s, true), b = y.tag(s, true);
    EXPECT_EQ(a.labels, b.labels);
    for (std::size_t t = 0; t < a.marginals.size() && t < b.marginals.size(); ++t)
      for (std::size_t k = 0; k < a.marginals[t].size(); ++k)
        marginals = std::max(marginals, std::abs(a.marginals[t][k] - b.marginals[t][k]));
  }
  return {biases, marginals};
}

TEST(PairTies, TrainingTiedGivesTheUntiedModelUpToRounding) {
  const auto train_data = toy(150, 1), test_data = toy(60, 2);
  const FeatureTemplate templ = FeatureTemplate::default_chunking();
  TrainOptions options;
  options.algorithm = "separate";
  options.threads = 2;
  options.pair_beam = 1e-9;  // (the toy's unary factor is sure: at 0.01 every list is its gold)
  // SGD over one shard (each mix takes the shard's weights, gamma = 1: no step search, whose
  // penalty counts a tied weight once, the one part of a fit that is not the untied fit's;
  // see pair_ties.h): the same weights but for rounding.
  options.shards = 1;
  const Model tied = train(train_data, "toy.txt", templ, options).model;
  options.pair_ties = false;
  const Model untied = train(train_data, "toy.txt", templ, options).model;
  EXPECT_EQ(tied.to_bytes().size(), untied.to_bytes().size());  // the same features
  const auto [biases, marginals] = differences(tied, untied, test_data);
  EXPECT_LT(biases, 1e-12);
  EXPECT_LT(marginals, 1e-12);
  // One epoch fewer is far off: the comparison can tell.
  options.epochs = 3;
  const Model fewer = train(train_data, "toy.txt", templ, options).model;
  EXPECT_GT(differences(fewer, untied, test_data).first, 1e-6);
  // Over 16 shards mixed 16 times per epoch (the default) close, not equal.
  options.epochs = TrainOptions().epochs;
  options.shards = TrainOptions().shards;
  options.pair_ties = true;
  const Model mixed_tied = train(train_data, "toy.txt", templ, options).model;
  options.pair_ties = false;
  const Model mixed = train(train_data, "toy.txt", templ, options).model;
  EXPECT_LT(differences(mixed_tied, mixed, test_data).second, 1e-3);
}

}  // namespace
}  // namespace septa::crf
