// UFF pipelines: per-process-style training (cells saved and reloaded between steps) gives
// bit-identical weights and accuracy to in-process training with the same seed.
#include "septa/nn/uff.h"

#include <gtest/gtest.h>

#include "septa/error.h"
#include "septa/nn/backprop.h"
#include "test_util.h"

namespace septa::nn {
namespace {

// 300 synthetic "images": class c brightens pixel block c; labels 0..9.
ImageSet synthetic_set(int64_t n, uint64_t seed) {
  seed_everything(seed);
  ImageSet set;
  set.labels = torch::randint(0, 10, {n}, torch::kInt64);
  set.images = torch::rand({n, 784}) * 0.3;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = set.labels[i].item<int64_t>();
    set.images[i].narrow(0, 78 * c, 78).add_(0.6);
  }
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

class PipelineTest : public ::testing::TestWithParam<CellKind> {
 protected:
  void SetUp() override { testing::setup_torch(); }
};

TEST_P(PipelineTest, SeparateStepsReproduceInProcessTrainingExactly) {
  const ImageSet train = synthetic_set(300, 1);
  const ImageSet test = synthetic_set(100, 2);
  const UffOptions options = small_options(GetParam());
  const std::string in_process = testing::temp_dir("inproc");
  const std::string stepwise = testing::temp_dir("steps");
  const MethodResult result = train_uff(options, train, test, nullptr, in_process);
  seed_everything(999);  // the global generator state must not matter between steps
  for (int k = 0; k < 2; ++k) train_cell_from_dir(options, k, stepwise, train, nullptr);
  const double stepwise_accuracy = train_head_from_dir(options, stepwise, train, test, nullptr);
  for (int k = 0; k < 2; ++k) {
    Cell a = load_cell(cell_path(in_process, k));
    Cell b = load_cell(cell_path(stepwise, k));
    EXPECT_TRUE(same_weights(*a, *b)) << "cell " << k;
  }
  Head a = load_head(head_path(in_process));
  Head b = load_head(head_path(stepwise));
  EXPECT_TRUE(same_weights(*a, *b));
  EXPECT_EQ(result.test_accuracy, stepwise_accuracy);
  EXPECT_EQ(evaluate_dir(stepwise, 2, test), stepwise_accuracy);
  // A different seed gives different weights: the comparison can fail.
  UffOptions other = options;
  other.seed = 12;
  const std::string reseeded = testing::temp_dir("reseeded");
  train_cell_from_dir(other, 0, reseeded, train, nullptr);
  Cell c = load_cell(cell_path(reseeded, 0));
  Cell d = load_cell(cell_path(in_process, 0));
  EXPECT_FALSE(same_weights(*c, *d));
}

INSTANTIATE_TEST_SUITE_P(Kinds, PipelineTest,
                         ::testing::Values(CellKind::kAutoencoder,
                                           CellKind::kDenoisingAutoencoder,
                                           CellKind::kConvAutoencoder),
                         [](const auto& info) { return cell_kind_name(info.param); });

TEST(PipelineErrorTest, MissingEarlierCellIsIoError) {
  testing::setup_torch();
  const ImageSet train = synthetic_set(50, 1);
  const std::string dir = testing::temp_dir("missing");
  EXPECT_THROW(train_cell_from_dir(small_options(CellKind::kAutoencoder), 1, dir, train, nullptr),
               IoError);
  EXPECT_THROW(train_cell_from_dir(small_options(CellKind::kAutoencoder), 5, dir, train, nullptr),
               OptionError);
}

TEST(BackpropTest, GradientsReachEveryCell) {
  testing::setup_torch();
  BackpropNet net(small_options(CellKind::kAutoencoder));
  const ImageSet batch = synthetic_set(20, 3);
  torch::nn::functional::cross_entropy(net->forward(batch.images), batch.labels).backward();
  for (auto& cell : net->cells_) {
    bool any = false;
    for (const auto& p : cell->parameters()) any = any || p.grad().defined();
    EXPECT_TRUE(any);
  }
}

TEST(ProgressTest, ReturningFalseCancels) {
  testing::setup_torch();
  const ImageSet train = synthetic_set(100, 1);
  int calls = 0;
  const ProgressCallback stop = [&calls](const TrainProgress&) { return ++calls < 2; };
  EXPECT_THROW(train_uff(small_options(CellKind::kAutoencoder), train, train, stop, ""), Cancelled);
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace septa::nn
