// Reduced-size runs of every registered method on the real Fashion-MNIST files (Debian's
// dataset-fashion-mnist): 5000 training images, one epoch, 2000 test images. Chance is 10%.
#include <gtest/gtest.h>

#include <cstdlib>

#include "nn/registry.h"
#include "nn/test_util.h"

namespace septa::nn {
namespace {

constexpr int64_t kTrainImages = 5000;
constexpr int64_t kTestImages = 2000;

const Split& data() {
  static const Split loaded = [] {
    const char* dir = std::getenv("SEPTA_FASHION_MNIST");
    Split all = load_idx_split(dir ? dir : kDefaultImageDir);
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
  const MethodEntry& entry = find_method(GetParam().method);
  OptionValues given = {{"epochs", "1"}};
  // FF learns slowly: more, larger steps in its single epoch.
  if (entry.info.name == "ff") given = {{"epochs", "1"}, {"lr", "0.1"}, {"batch", "10"}};
  if (entry.info.has_parts) given["head-epochs"] = "1";
  const Options options(entry.info, given);
  RunContext ctx;
  ctx.metadata = run_metadata(options);
  const RunResult result = entry.train(RunInputs{options, data(), ctx, ""});
  const double accuracy = result.metrics.at("test accuracy");
  std::printf("%s: test accuracy %.4f in %.1fs\n", GetParam().method, accuracy, result.seconds);
  EXPECT_GE(accuracy, GetParam().min_accuracy);
  EXPECT_FALSE(result.parts.empty());
  for (const auto& part : result.parts) EXPECT_TRUE(std::isfinite(part.metrics.at("loss")));
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
