#include "crf/features/encoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "crf/fixtures.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

// Every array of `got` equals that of `want` (the datasets encoded with `threads` threads).
void expect_same_data(const Dataset& got, const Dataset& want, int threads) {
  EXPECT_EQ(got.attribute_ids, want.attribute_ids) << threads;
  EXPECT_EQ(got.attribute_values, want.attribute_values) << threads;
  EXPECT_EQ(got.item_offsets, want.item_offsets) << threads;
  EXPECT_EQ(got.edge_ids, want.edge_ids) << threads;
  EXPECT_EQ(got.edge_offsets, want.edge_offsets) << threads;
  EXPECT_EQ(got.sequence_offsets, want.sequence_offsets) << threads;
  EXPECT_EQ(got.labels, want.labels) << threads;
  EXPECT_EQ(got.weights, want.weights) << threads;
}

TEST(Encoder, ParallelEncodingGivesTheSequentialIdsAndData) {
  std::istringstream in(testing::toy_chunking_corpus(700, 12));
  const auto corpus = read_columns(in, "toy.txt");
  Encoder one(FeatureTemplate::default_chunking());
  Dataset a;
  one.encode_training(corpus, a, 1);
  for (int threads : {2, 3, 4, 7, 16}) {  // from 4 chunks on the dictionaries merge in parallel
    Encoder many(FeatureTemplate::default_chunking());
    Dataset b;
    many.encode_training(corpus, b, threads);
    EXPECT_EQ(many.attributes().names(), one.attributes().names()) << threads;
    const std::vector<std::string>& names = many.attributes().names();
    for (std::size_t id = 0; id < names.size(); ++id)  // the merged index finds every string
      ASSERT_EQ(many.attributes().find(names[id]), static_cast<int32_t>(id)) << threads;
    EXPECT_EQ(many.attributes().find("no such attribute"), -1);
    EXPECT_EQ(many.labels().names(), one.labels().names());
    expect_same_data(b, a, threads);
  }
  EXPECT_EQ(a.items(), a.labels.size());
  EXPECT_EQ(a.attribute_ids.size(), a.items() * 19);  // 19 unigram templates per token
  // Column data: every value 1, and the dataset says so (the kernels skip reading them).
  EXPECT_TRUE(a.unit_values);
  for (float v : a.attribute_values) ASSERT_EQ(v, 1.0f);
}

// Encoding a corpus it owns (train(std::vector&&)) frees the text as it goes and trims the
// heaps every 2048 sentences: the same dictionaries and data as encoding a borrowed corpus;
// without values, the same but for the values, left empty (all 1).
TEST(Encoder, ConsumingEncodingGivesTheSameDataAndEmptiesTheCorpus) {
  std::istringstream in(testing::toy_chunking_corpus(2500, 12));
  const auto corpus = read_columns(in, "toy.txt");
  const FeatureTemplate feature_template =
      FeatureTemplate::parse("U00:%x[0,0]\nU01:%x[-1,1]/%x[0,1]\nB01:%x[0,1]\nB\n", "t");
  for (int threads : {1, 3, 16}) {
    Encoder borrowed(feature_template), owner(feature_template);
    Dataset a, b;
    borrowed.encode_training(corpus, a, threads);
    std::vector<ColumnSentence> copy = corpus;
    owner.encode_training(std::move(copy), b, threads);
    EXPECT_TRUE(copy.empty()) << threads;
    EXPECT_EQ(owner.attributes().names(), borrowed.attributes().names()) << threads;
    EXPECT_EQ(owner.labels().names(), borrowed.labels().names()) << threads;
    EXPECT_EQ(owner.columns(), borrowed.columns()) << threads;
    EXPECT_TRUE(b.unit_values) << threads;
    EXPECT_TRUE(b.has_edges()) << threads;
    expect_same_data(b, a, threads);
    Encoder bare(feature_template);
    Dataset c;
    copy = corpus;
    bare.encode_training(std::move(copy), c, threads, /*values=*/false);
    EXPECT_TRUE(copy.empty()) << threads;
    EXPECT_EQ(bare.attributes().names(), borrowed.attributes().names()) << threads;
    EXPECT_TRUE(c.unit_values) << threads;
    EXPECT_TRUE(c.attribute_values.empty()) << threads;
    EXPECT_EQ(c.sequence(0).attribute_values, nullptr) << threads;  // read as all 1
    c.attribute_values = a.attribute_values;
    expect_same_data(c, a, threads);
  }
}

// Labels first seen in later chunks, in an order unlike their names': each chunk interns its
// labels and the chunks merge in order, giving every label its first-seen id.
TEST(Encoder, ParallelLabelIdsAreFirstSeenIds) {
  std::istringstream in(testing::toy_chunking_corpus(700, 12));
  auto corpus = read_columns(in, "toy.txt");
  std::vector<std::string> first_seen;  // the labels in first-seen order
  std::vector<int32_t> expected;        // [items] their first-seen ids
  for (std::size_t n = 0; n < corpus.size(); ++n)
    for (std::size_t t = 0; t < corpus[n].columns.size(); ++t) {
      // New labels keep appearing up to the last sentences (700 sentences: 11 chunks at 16
      // threads), numbered backwards.
      const std::size_t k = (n * 31 + t * 7) % (n / 50 + 2);
      std::string label = "L" + std::to_string(99 - k);
      corpus[n].columns[t].back() = label;
      const auto at = std::find(first_seen.begin(), first_seen.end(), label);
      expected.push_back(static_cast<int32_t>(at - first_seen.begin()));
      if (at == first_seen.end()) first_seen.push_back(label);
    }
  ASSERT_GT(first_seen.size(), 10u);
  for (int threads : {1, 2, 3, 4, 7, 16}) {
    Encoder encoder(FeatureTemplate::default_chunking());
    Dataset data;
    encoder.encode_training(corpus, data, threads);
    EXPECT_EQ(encoder.labels().names(), first_seen) << threads;
    EXPECT_EQ(data.labels, expected) << threads;
  }
}

// The training dataset, written chunk by chunk in parallel, equals the sentences encoded one
// at a time by the trained encoder (the tagging path), state and edge attributes alike.
TEST(Encoder, TrainingDatasetEqualsSentenceBySentenceEncoding) {
  std::istringstream in(testing::toy_chunking_corpus(300, 12));
  const auto corpus = read_columns(in, "toy.txt");
  const FeatureTemplate feature_template =
      FeatureTemplate::parse("U00:%x[0,0]\nU01:%x[-1,1]/%x[0,1]\nB01:%x[0,1]\n", "t");
  for (int threads : {1, 2, 3, 7, 16}) {
    Encoder encoder(feature_template);
    Dataset trained;
    encoder.encode_training(corpus, trained, threads);
    Dataset one_by_one;
    for (const ColumnSentence& sentence : corpus) encoder.encode(sentence, one_by_one);
    EXPECT_TRUE(trained.has_edges());
    expect_same_data(trained, one_by_one, threads);
  }
}

TEST(Encoder, TaggingDropsUnknownAttributesAndMarksUnknownLabels) {
  std::istringstream in("the DT B-NP\ndog NN I-NP\n");
  const auto corpus = read_columns(in, "t.txt");
  Encoder encoder(FeatureTemplate::default_chunking());
  Dataset train;
  encoder.encode_training(corpus, train);
  std::istringstream test_in("the DT B-XX\ncat NN I-NP\n");
  Dataset test;
  encoder.encode(read_columns(test_in, "u.txt")[0], test);
  EXPECT_EQ(test.labels, (std::vector<int32_t>{-1, 1}));
  EXPECT_LT(test.attribute_ids.size(), train.attribute_ids.size());  // "cat" strings unknown
  std::istringstream short_in("the DT\n");
  Dataset no_gold;
  encoder.encode(read_columns(short_in, "v.txt")[0], no_gold);  // no gold column: fine
  EXPECT_EQ(no_gold.labels, (std::vector<int32_t>{-1}));
  std::istringstream bad_in("the\n");
  Dataset bad;
  EXPECT_THROW(encoder.encode(read_columns(bad_in, "w.txt")[0], bad), septa::FormatError);
}

}  // namespace
}  // namespace septa::crf
