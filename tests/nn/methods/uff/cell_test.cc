// Cells: no gradient crosses cells, save/load round trips, shapes.
#include "nn/methods/uff/cell.h"

#include <gtest/gtest.h>

#include "nn/methods/uff/autoencoder_cells.h"
#include "nn/methods/uff/uff.h"
#include "septa/error.h"
#include "nn/test_util.h"

namespace septa::nn {
namespace {

CellSpec spec_of(CellKind kind, std::vector<int64_t> shape, int64_t width) {
  CellSpec spec;
  spec.kind = kind;
  spec.input_shape = std::move(shape);
  spec.width = width;
  return spec;
}

std::vector<torch::Tensor> copies(torch::nn::Module& module) {
  std::vector<torch::Tensor> out;
  for (const auto& p : module.parameters()) out.push_back(p.detach().clone());
  return out;
}

bool unchanged(torch::nn::Module& module, const std::vector<torch::Tensor>& before) {
  const auto params = module.parameters();
  for (size_t i = 0; i < params.size(); ++i)
    if (!torch::equal(params[i], before[i])) return false;
  return true;
}

bool all_grads_empty(torch::nn::Module& module) {
  for (const auto& p : module.parameters())
    if (p.grad().defined()) return false;
  return true;
}

class CellTest : public ::testing::TestWithParam<CellKind> {
 protected:
  void SetUp() override { testing::setup_torch(); }
  // Two chained cells of the parameter's kind on 28x28 inputs.
  std::vector<Cell> two_cells() {
    const bool conv = GetParam() == CellKind::kConvAutoencoder;
    std::vector<Cell> cells;
    cells.push_back(make_cell(spec_of(GetParam(), conv ? std::vector<int64_t>{1, 28, 28}
                                                        : std::vector<int64_t>{784}, 6)));
    cells.push_back(make_cell(spec_of(GetParam(), cells[0]->latent_shape(), 4)));
    return cells;
  }
};

TEST_P(CellTest, ACellsLossLeavesOtherCellsGradientsEmpty) {
  std::vector<Cell> cells = two_cells();
  const torch::Tensor x0 = torch::rand({8, 784});
  const torch::Tensor x1 = normalise_latent(cells[0]->encode(x0)).detach();
  cells[1]->train_step(x1);
  EXPECT_TRUE(all_grads_empty(*cells[0]));
  EXPECT_FALSE(all_grads_empty(*cells[1]));
  // train_step detaches its input itself: even a live graph does not leak into cell 0.
  cells[1]->zero_grad();
  const auto before0 = copies(*cells[0]);
  cells[1]->train_step(normalise_latent(cells[0]->encode(x0)));
  EXPECT_TRUE(all_grads_empty(*cells[0]));
  EXPECT_TRUE(unchanged(*cells[0], before0));
  // And training cell 0 leaves cell 1 untouched.
  const auto before1 = copies(*cells[1]);
  cells[0]->train_step(x0);
  EXPECT_TRUE(unchanged(*cells[1], before1));
  EXPECT_FALSE(unchanged(*cells[0], before0));
}

TEST_P(CellTest, TheHeadsLossChangesNoCellWeight) {
  std::vector<Cell> cells = two_cells();
  const auto before0 = copies(*cells[0]);
  const auto before1 = copies(*cells[1]);
  const torch::Tensor images = torch::rand({40, 784});
  const torch::Tensor labels = torch::randint(0, 10, {40}, torch::kInt64);
  UffOptions options;
  options.head_epochs = 2;
  options.batch_size = 10;
  const torch::Tensor features = head_features(cells, images);
  StageOutcome outcome;
  Head head = train_head(options, features, labels, /*classes=*/10, RunContext{}, &outcome);
  EXPECT_TRUE(outcome.complete);
  EXPECT_TRUE(unchanged(*cells[0], before0));
  EXPECT_TRUE(unchanged(*cells[1], before1));
  EXPECT_TRUE(all_grads_empty(*cells[0]));
  EXPECT_TRUE(all_grads_empty(*cells[1]));
  EXPECT_FALSE(all_grads_empty(*head));
}

TEST_P(CellTest, SaveLoadRoundTripsWeightsAndOutputs) {
  std::vector<Cell> cells = two_cells();
  cells[0]->train_step(torch::rand({8, 784}));  // move away from the initialisation
  const std::string dir = testing::temp_dir("cell");
  save_cell(cells[0], dir + "/c.safetensors", {{kMethodKey, "uff-x"}});
  torch::manual_seed(12345);  // a different initialisation before loading
  Cell loaded = load_cell(dir + "/c.safetensors", "uff-x");
  EXPECT_EQ(loaded->spec_.kind, GetParam());
  EXPECT_EQ(loaded->spec_.input_shape, cells[0]->spec_.input_shape);
  EXPECT_TRUE(same_weights(*loaded, *cells[0]));
  const torch::Tensor x = torch::rand({3, 784});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(loaded->encode(x), cells[0]->encode(x)));
}

INSTANTIATE_TEST_SUITE_P(AllKinds, CellTest,
                         ::testing::Values(CellKind::kAutoencoder,
                                           CellKind::kDenoisingAutoencoder,
                                           CellKind::kConvAutoencoder),
                         [](const auto& info) { return cell_kind_name(info.param); });

TEST(CellShapeTest, ConvCellHandlesOddSizes) {
  testing::setup_torch();
  Cell cell = make_cell(spec_of(CellKind::kConvAutoencoder, {5, 7, 7}, 3));
  EXPECT_EQ(cell->latent_shape(), (std::vector<int64_t>{3, 4, 4}));
  const torch::Tensor x = torch::rand({2, 5, 7, 7});
  EXPECT_EQ(cell->encode(x).sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_TRUE(std::isfinite(cell->local_loss(x).item<double>()));
}

TEST(CellShapeTest, DenoisingCellCorruptsOnlyItsInput) {
  testing::setup_torch();
  CellSpec spec = spec_of(CellKind::kDenoisingAutoencoder, {20}, 4);
  spec.noise = 0.0;
  Cell dae = make_cell(spec);
  Cell ae = make_cell(spec_of(CellKind::kAutoencoder, {20}, 4));
  // With the same weights and no noise, DAE and AE losses agree; with noise they differ.
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < ae->parameters().size(); ++i)
    ae->parameters()[i].copy_(dae->parameters()[i]);
  const torch::Tensor x = torch::rand({6, 20});
  EXPECT_DOUBLE_EQ(dae->local_loss(x).item<double>(), ae->local_loss(x).item<double>());
  dae->spec_.noise = 0.5;
  EXPECT_NE(dae->local_loss(x).item<double>(), ae->local_loss(x).item<double>());
}

TEST(CellShapeTest, BadSpecsAreOptionErrors) {
  EXPECT_THROW(make_cell(spec_of(CellKind::kAutoencoder, {784}, 0)), OptionError);
  EXPECT_THROW(make_cell(spec_of(CellKind::kConvAutoencoder, {784}, 4)), OptionError);
  EXPECT_THROW(parse_cell_kind("gan"), OptionError);
}

}  // namespace
}  // namespace septa::nn
