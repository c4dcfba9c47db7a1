// The linear-chain CRF's state features, bucketed straight from the dataset, against
// SparseFeaturesBuilder fed the same (attribute, label) occurrences.
#include "crf/algorithms/linear_chain_features.h"

#include <gtest/gtest.h>

#include <string>

#include "crf/random_data.h"
#include "septa/crf/feature_template.h"

namespace septa::crf {
namespace {

TEST(BuildLinearChain, StateFeaturesEqualTheBuildersForEveryRule) {
  constexpr std::size_t kA = 40, kL = 4;
  const Dataset data = testing::random_dataset(300, 6, kA, kL, 11);
  Encoder encoder{FeatureTemplate::default_chunking()};
  for (std::size_t a = 0; a < kA; ++a) encoder.attributes().add("a" + std::to_string(a));
  for (std::size_t k = 0; k < kL; ++k) encoder.labels().add("L" + std::to_string(k));
  const Dataset dev;
  const std::vector<std::vector<std::string>> dev_gold;
  const ProgressCallback progress;
  for (const int min_freq : {1, 2, 5})
    for (const bool all : {false, true}) {
      TrainOptions options;
      options.min_freq = min_freq;
      options.all_possible_states = all;
      const TrainingContext context{data,     encoder,  options,
                                    dev,      dev_gold, progress,
                                    std::chrono::steady_clock::now()};
      SparseFeaturesBuilder builder(kA, kL);
      for (std::size_t i = 0; i < data.items(); ++i)
        for (std::size_t e = data.item_offsets[i]; e < data.item_offsets[i + 1]; ++e)
          builder.add(data.attribute_ids[e], data.labels[i]);
      const SparseFeatures want = builder.build(min_freq, all);
      const LinearChainScorer got = build_linear_chain(context);
      EXPECT_EQ(got.states().A, want.A);
      EXPECT_EQ(got.states().K, want.K);
      EXPECT_EQ(got.states().offsets, want.offsets) << min_freq << all;
      EXPECT_EQ(got.states().classes, want.classes) << min_freq << all;
      EXPECT_GT(want.size(), 0u);
      EXPECT_EQ(got.feature_count(), want.size() + kL * kL);
    }
}

}  // namespace
}  // namespace septa::crf
