// UFF pipelines: per-process-style training (cells saved and reloaded between steps) gives
// bit-identical weights and accuracy to in-process training with the same seed.
#include "nn/methods/uff/uff.h"

#include <gtest/gtest.h>

#include "nn/methods/backprop/backprop.h"
#include "nn/registry.h"
#include "septa/error.h"
#include "nn/test_util.h"

namespace septa::nn {
namespace {

// n synthetic 28x28 "images": class c brightens pixel block c; labels 0..9.
Dataset synthetic_set(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor labels = torch::randint(0, 10, {n}, torch::kInt64);
  torch::Tensor images = torch::rand({n, 784}) * 0.3;
  for (int64_t i = 0; i < n; ++i)
    images[i].narrow(0, 78 * labels[i].item<int64_t>(), 78).add_(0.6);
  Dataset set = tabular_dataset(images, labels, /*classes=*/10);
  set.shape = {1, 28, 28};
  return set;
}

UffOptions small_options(CellKind kind) {
  UffOptions options;
  options.kind = kind;
  options.widths = kind == CellKind::kConvAutoencoder ? std::vector<int64_t>{4, 4}
                                                      : std::vector<int64_t>{32, 16};
  options.cell_epochs = 2;
  options.head_epochs = 3;
  options.batch_size = 50;
  options.seed = 11;
  return options;
}

RunContext context(const std::string& method) {
  RunContext ctx;
  ctx.metadata = {{kMethodKey, method}, {kOptionsKey, "test"}, {kSeedKey, "11"}};
  return ctx;
}

class PipelineTest : public ::testing::TestWithParam<CellKind> {
 protected:
  void SetUp() override { testing::setup_torch(); }
};

TEST_P(PipelineTest, SeparateStepsReproduceInProcessTrainingExactly) {
  const Split data{synthetic_set(300, 1), synthetic_set(100, 2)};
  const UffOptions options = small_options(GetParam());
  const RunContext ctx = context("uff-test");
  const std::string in_process = testing::temp_dir("inproc");
  const std::string stepwise = testing::temp_dir("steps");
  const RunResult result = train_uff(options, data, ctx, in_process);
  torch::manual_seed(999);  // the global generator state must not matter between steps
  for (int k = 0; k < 2; ++k) train_cell_from_dir(options, k, stepwise, data, ctx);
  const RunResult head = train_head_from_dir(options, stepwise, data, ctx);
  for (int k = 0; k < 2; ++k) {
    Cell a = load_cell(cell_path(in_process, k));
    Cell b = load_cell(cell_path(stepwise, k));
    EXPECT_TRUE(same_weights(*a, *b)) << "cell " << k;
  }
  Head a = load_head(head_path(in_process));
  Head b = load_head(head_path(stepwise));
  EXPECT_TRUE(same_weights(*a, *b));
  EXPECT_EQ(result.metrics.at("test accuracy"), head.metrics.at("test accuracy"));
  EXPECT_EQ(evaluate_dir(stepwise, 2, "uff-test", data.test, torch::kCPU),
            head.metrics.at("test accuracy"));
  // A different seed gives different weights: the comparison can fail.
  UffOptions other = options;
  other.seed = 12;
  const std::string reseeded = testing::temp_dir("reseeded");
  train_cell_from_dir(other, 0, reseeded, data, ctx);
  Cell c = load_cell(cell_path(reseeded, 0));
  Cell d = load_cell(cell_path(in_process, 0));
  EXPECT_FALSE(same_weights(*c, *d));
}

INSTANTIATE_TEST_SUITE_P(Kinds, PipelineTest,
                         ::testing::Values(CellKind::kAutoencoder,
                                           CellKind::kDenoisingAutoencoder,
                                           CellKind::kConvAutoencoder),
                         [](const auto& info) { return cell_kind_name(info.param); });

TEST(PipelineErrorTest, MissingEarlierCellIsIoErrorAndAnotherMethodsCellIsRejected) {
  testing::setup_torch();
  const Split data{synthetic_set(50, 1), synthetic_set(20, 2)};
  const std::string dir = testing::temp_dir("missing");
  const UffOptions options = small_options(CellKind::kAutoencoder);
  EXPECT_THROW(train_cell_from_dir(options, 1, dir, data, context("uff-ae")), IoError);
  EXPECT_THROW(train_cell_from_dir(options, 5, dir, data, context("uff-ae")), OptionError);
  train_cell_from_dir(options, 0, dir, data, context("uff-ae"));
  EXPECT_THROW(train_cell_from_dir(options, 1, dir, data, context("uff-dae")), ModelError);
}

TEST(BackpropTest, GradientsReachEveryCell) {
  testing::setup_torch();
  BackpropNet net(small_options(CellKind::kAutoencoder), std::vector<int64_t>{784}, int64_t{10});
  const Dataset batch = synthetic_set(20, 3);
  torch::nn::functional::cross_entropy(net->forward(batch.inputs), batch.labels).backward();
  for (auto& cell : net->cells_) {
    bool any = false;
    for (const auto& p : cell->parameters()) any = any || p.grad().defined();
    EXPECT_TRUE(any);
  }
}

}  // namespace
}  // namespace septa::nn
