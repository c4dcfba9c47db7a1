// ForeachAdamW::step_scaled and clipped_step: a scale by a power of two is exact, so step_scaled(s)
// must equal torch::optim::AdamW on s g bit for bit; clipped_step must equal libtorch's
// clip_grad_norm_ followed by Adam (up to the rounding of the folded scale), clipping or not.
#include "nn/foreach_clip.h"

#include <gtest/gtest.h>

#include <vector>

namespace septa::nn {
namespace {

std::vector<torch::Tensor> parameters(uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> out;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{6, 4}, {4}, {2, 3, 2}})
    out.push_back(torch::randn(shape).requires_grad_());
  return out;
}

TEST(ForeachClipTest, ScaledStepEqualsAdamWOnScaledGradientsBitForBit) {
  std::vector<torch::Tensor> a = parameters(5), b = parameters(5);
  const auto options = torch::optim::AdamWOptions(0.01).weight_decay(0.05).betas({0.8, 0.95});
  torch::optim::AdamW reference(a, options);
  ForeachAdamW scaled(b, options);
  torch::manual_seed(13);
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < a.size(); ++i) {
      const torch::Tensor g = torch::randn(a[i].sizes());
      a[i].mutable_grad() = g * 0.25;
      b[i].mutable_grad() = g.clone();
    }
    reference.step();
    scaled.step_scaled(0.25);
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i << " after step " << step;
  }
}

TEST(ForeachClipTest, ClippedStepEqualsClipGradNormThenAdam) {
  for (const double max_norm : {0.5, 1e6}) {
    std::vector<torch::Tensor> a = parameters(9), b = parameters(9);
    torch::optim::Adam reference(a, torch::optim::AdamOptions(0.02).betas({0.9, 0.98}));
    ForeachAdamW clipped(b, torch::optim::AdamWOptions(0.02).betas({0.9, 0.98}).weight_decay(0));
    torch::manual_seed(17);
    for (int step = 0; step < 5; ++step) {
      for (size_t i = 0; i < a.size(); ++i) {
        const torch::Tensor g = torch::randn(a[i].sizes()) * (step + 1);
        a[i].mutable_grad() = g.clone();
        b[i].mutable_grad() = g.clone();
      }
      const double norm_a = torch::nn::utils::clip_grad_norm_(a, max_norm);
      reference.step();
      const double norm_b = clipped_step(clipped, max_norm);
      EXPECT_NEAR(norm_a, norm_b, 1e-5 * norm_a);
      if (max_norm < 1) {
        EXPECT_GT(norm_b, 2 * max_norm);  // the clipping bites
      }
      for (size_t i = 0; i < a.size(); ++i) {
        if (max_norm > 1) {
          ASSERT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i << " after step " << step;
        } else {
          ASSERT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6)) << "parameter " << i << " after step " << step;
        }
      }
    }
    EXPECT_FALSE(torch::equal(b[0], parameters(9)[0]));  // it did move
  }
}

TEST(ForeachClipTest, NoGradientsNoStep) {
  std::vector<torch::Tensor> p = parameters(1);
  ForeachAdamW optimizer(p, torch::optim::AdamWOptions(0.1));
  EXPECT_EQ(clipped_step(optimizer, 1.0), 0.0);
  EXPECT_TRUE(optimizer.state().empty());
  EXPECT_TRUE(torch::equal(p[0], parameters(1)[0]));
}

}  // namespace
}  // namespace septa::nn
