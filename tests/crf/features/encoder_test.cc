#include "crf/features/encoder.h"

#include <gtest/gtest.h>

#include <sstream>

#include "crf/fixtures.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

TEST(Encoder, ParallelEncodingGivesTheSequentialIdsAndData) {
  std::istringstream in(testing::toy_chunking_corpus(700, 12));
  const auto corpus = read_columns(in, "toy.txt");
  Encoder one(FeatureTemplate::default_chunking());
  Dataset a;
  one.encode_training(corpus, a, 1);
  for (int threads : {2, 3, 7}) {
    Encoder many(FeatureTemplate::default_chunking());
    Dataset b;
    many.encode_training(corpus, b, threads);
    EXPECT_EQ(many.attributes().names(), one.attributes().names()) << threads;
    EXPECT_EQ(many.labels().names(), one.labels().names());
    EXPECT_EQ(b.attribute_ids, a.attribute_ids);
    EXPECT_EQ(b.item_offsets, a.item_offsets);
    EXPECT_EQ(b.sequence_offsets, a.sequence_offsets);
    EXPECT_EQ(b.labels, a.labels);
  }
  EXPECT_EQ(a.items(), a.labels.size());
  EXPECT_EQ(a.attribute_ids.size(), a.items() * 19);  // 19 unigram templates per token
  // Column data: every value 1, and the dataset says so (the kernels skip reading them).
  EXPECT_TRUE(a.unit_values);
  for (float v : a.attribute_values) ASSERT_EQ(v, 1.0f);
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
