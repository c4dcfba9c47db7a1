// Forward-Forward: goodness and loss on hand-computed tiny tensors, overlay, locality.
#include "nn/methods/ff/forward_forward.h"

#include <gtest/gtest.h>

#include <cmath>

#include "nn/test_util.h"

namespace septa::nn {
namespace {

double softplus(double x) { return std::log1p(std::exp(x)); }

TEST(ForwardForwardTest, GoodnessIsMeanSquare) {
  const torch::Tensor h = torch::tensor({1.0f, 2.0f, 3.0f, 0.0f}).reshape({2, 2});
  const torch::Tensor g = goodness(h);
  EXPECT_FLOAT_EQ(g[0].item<float>(), 2.5f);  // (1 + 4) / 2
  EXPECT_FLOAT_EQ(g[1].item<float>(), 4.5f);  // (9 + 0) / 2
}

TEST(ForwardForwardTest, LossMatchesHandComputation) {
  // pos goodness {2.5, 0.5}, neg goodness {4.5, 1}, theta 2.
  const torch::Tensor pos = torch::tensor({1.0, 2.0, 1.0, 0.0}, torch::kFloat64).reshape({2, 2});
  const torch::Tensor neg = torch::tensor({3.0, 0.0, 1.0, 1.0}, torch::kFloat64).reshape({2, 2});
  const double expected = (softplus(2 - 2.5) + softplus(2 - 0.5)) / 2 +
                          (softplus(4.5 - 2) + softplus(1.0 - 2)) / 2;
  EXPECT_NEAR(ff_loss(pos, neg, /*theta=*/2.0).item<double>(), expected, 1e-12);
  // Swapped roles: softplus(theta - g) on {4.5, 1}, softplus(g - theta) on {2.5, 0.5}.
  const double swapped = (softplus(2 - 4.5) + softplus(2 - 1.0)) / 2 +
                         (softplus(2.5 - 2) + softplus(0.5 - 2)) / 2;
  EXPECT_NEAR(ff_loss(neg, pos, /*theta=*/2.0).item<double>(), swapped, 1e-12);
  // Another threshold: theta = 0.5.
  const double low = (softplus(0.5 - 2.5) + softplus(0.5 - 0.5)) / 2 +
                     (softplus(4.5 - 0.5) + softplus(1.0 - 0.5)) / 2;
  EXPECT_NEAR(ff_loss(pos, neg, /*theta=*/0.5).item<double>(), low, 1e-12);
}

TEST(ForwardForwardTest, LossGradientMatchesHandComputation) {
  // d/dh_j softplus(theta - g(h)) = -sigmoid(theta - g) * 2 h_j / H, averaged over N rows.
  const torch::Tensor pos =
      torch::tensor({1.0, 2.0}, torch::kFloat64).reshape({1, 2}).requires_grad_(true);
  const torch::Tensor neg = torch::tensor({3.0, 0.0}, torch::kFloat64).reshape({1, 2});
  ff_loss(pos, neg, /*theta=*/2.0).backward();
  const double s = 1.0 / (1.0 + std::exp(-(2.0 - 2.5)));  // sigmoid(theta - g_pos)
  EXPECT_NEAR(pos.grad()[0][0].item<double>(), -s * 2 * 1.0 / 2, 1e-12);
  EXPECT_NEAR(pos.grad()[0][1].item<double>(), -s * 2 * 2.0 / 2, 1e-12);
}

TEST(ForwardForwardTest, LengthNormalisationHidesTheLength) {
  const torch::Tensor x = torch::tensor({3.0, 4.0, 30.0, 40.0}, torch::kFloat64).reshape({2, 2});
  const torch::Tensor y = length_normalise(x);
  EXPECT_NEAR(y[0][0].item<double>(), 3.0 / (5.0 + 1e-4), 1e-12);
  EXPECT_NEAR(y[1][1].item<double>(), 40.0 / (50.0 + 1e-4), 1e-12);
  EXPECT_NEAR(y[1].norm().item<double>(), 1.0, 1e-5);
}

TEST(ForwardForwardTest, OverlayWritesOneHotAtTheImageMax) {
  torch::Tensor images = torch::full({2, 784}, 0.25f);
  images[0][100] = 0.75f;
  const torch::Tensor out = overlay_labels(images, torch::tensor({3, 0}, torch::kInt64), 10);
  EXPECT_FLOAT_EQ(out[0][3].item<float>(), 0.75f);
  EXPECT_FLOAT_EQ(out[0][0].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(out[1][0].item<float>(), 0.25f);
  EXPECT_FLOAT_EQ(out[1][9].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(out[0][10].item<float>(), 0.25f);
  EXPECT_FLOAT_EQ(images[0][3].item<float>(), 0.25f);  // input untouched
}

TEST(ForwardForwardTest, UpperLayerLossLeavesLowerLayerGradientsEmpty) {
  testing::setup_torch();
  FFLayer lower(FFLayerOptions{784, 16});
  FFLayer upper(FFLayerOptions{16, 8});
  const torch::Tensor x = torch::rand({4, 784});
  const torch::Tensor h = lower->forward(x).detach();
  ff_loss(upper->forward(h), upper->forward(h * 0.5), 2.0).backward();
  for (const auto& p : lower->parameters()) EXPECT_FALSE(p.grad().defined());
  for (const auto& p : upper->parameters()) EXPECT_TRUE(p.grad().defined());
}

TEST(ForwardForwardTest, TrainStepLowersTheLossOnAFixedBatch) {
  testing::setup_torch();
  FFNetOptions options;
  options.hidden = {32, 32};
  options.learning_rate = 0.03;
  FFNet net(options);
  const torch::Tensor images = torch::rand({64, 784});
  const torch::Tensor labels = torch::randint(0, 10, {64}, torch::kInt64);
  const std::vector<double> first = net.train_step(images, labels);
  std::vector<double> last;
  for (int i = 0; i < 30; ++i) last = net.train_step(images, labels);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_LT(last[0], first[0]);
  EXPECT_EQ(net.predict(images).sizes(), (std::vector<int64_t>{64}));
  EXPECT_EQ(net.label_goodness(images).sizes(), (std::vector<int64_t>{64, 10}));
}

}  // namespace
}  // namespace septa::nn
