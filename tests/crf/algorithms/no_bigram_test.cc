// A CRF++ template without a B line has no transition features (CRF++'s meaning).
#include <gtest/gtest.h>

#include <sstream>

#include "crf/fixtures.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

std::vector<ColumnSentence> toy(std::size_t n, unsigned seed) {
  std::istringstream in(testing::toy_chunking_corpus(n, seed));
  return read_columns(in, "toy.txt");
}

std::size_t nonzero_transitions(const Model& model) {
  std::size_t n = 0;
  for (const WeightedFeature& f : model.transition_features()) n += f.weight != 0.0;
  return n;
}

TEST(NoBigramTemplate, TrainsWithoutTransitionsAndWithBLearnsThem) {
  const auto data = toy(40, 1);
  for (const char* algorithm : {"lbfgs", "ap", "pa", "arow"}) {
    TrainOptions options;
    options.algorithm = algorithm;
    options.max_iterations = 20;
    const Model without =
        train(data, "toy.txt", FeatureTemplate::parse("U00:%x[0,0]\nU01:%x[0,1]\n", "t"), options)
            .model;
    EXPECT_EQ(nonzero_transitions(without), 0u) << algorithm;
    const Model with =
        train(data, "toy.txt", FeatureTemplate::parse("U00:%x[0,0]\nU01:%x[0,1]\nB\n", "t"),
              options)
            .model;
    EXPECT_GT(nonzero_transitions(with), 0u) << algorithm;
  }
}

TEST(NoBigramTemplate, AlgorithmsThatNeedTransitionsSaySo) {
  TrainOptions options;
  options.algorithm = "separate";
  EXPECT_THROW(train(toy(10, 1), "toy.txt", FeatureTemplate::parse("U00:%x[0,0]\n", "t"), options),
               OptionError);
}

}  // namespace
}  // namespace septa::crf
