// Reduced-size runs on the real Fashion-MNIST files (Debian's dataset-fashion-mnist):
// 5000 training images, one epoch, 2000 test images. Chance is 10%.
#include <gtest/gtest.h>

#include <cstdlib>

#include "septa/nn/methods.h"
#include "test_util.h"

namespace septa::nn {
namespace {

constexpr int64_t kTrainImages = 5000;
constexpr int64_t kTestImages = 2000;

const FashionMnist& data() {
  static const FashionMnist loaded = [] {
    const char* dir = std::getenv("SEPTA_FASHION_MNIST");
    FashionMnist all = load_fashion_mnist(dir ? dir : kDefaultFashionMnistDir);
    all.train = take_first(all.train, kTrainImages);
    all.test = take_first(all.test, kTestImages);
    return all;
  }();
  return loaded;
}

struct Case {
  const char* method;
  double min_accuracy;  // stated accuracy this run must reach (chance: 0.10)
};

class ReducedRunTest : public ::testing::TestWithParam<Case> {};

TEST_P(ReducedRunTest, OneEpochOnAFewThousandImagesBeatsChanceByFar) {
  testing::setup_torch();
  MethodConfig config = default_config(GetParam().method);
  config.ff.epochs = 1;
  config.ff.learning_rate = 0.1;  // FF learns slowly: more, larger steps in its single epoch
  config.ff.batch_size = 10;
  config.uff.cell_epochs = 1;
  config.uff.head_epochs = 1;
  const MethodResult result = run_method(config, data().train, data().test, nullptr, "");
  std::printf("%s: test accuracy %.4f in %.1fs\n", GetParam().method, result.test_accuracy,
              result.seconds);
  EXPECT_GE(result.test_accuracy, GetParam().min_accuracy);
  for (double loss : result.part_losses) EXPECT_TRUE(std::isfinite(loss));
}

INSTANTIATE_TEST_SUITE_P(Methods, ReducedRunTest,
                         ::testing::Values(Case{"ff", 0.30}, Case{"uff-ae", 0.70},
                                           Case{"uff-dae", 0.70}, Case{"uff-conv", 0.70},
                                           Case{"backprop", 0.70}),
                         [](const auto& info) {
                           std::string name = info.param.method;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace septa::nn
