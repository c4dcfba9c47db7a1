// ForeachAdamW against torch::optim::AdamW: on the CPU the multi-tensor update must equal the
// per-parameter one bit for bit, step after step (weight decay, bias corrections, a parameter
// that misses steps and so has its own step count), and keep the same state objects, so that
// checkpoints and resumed runs cannot tell the two apart.
#include "nn/foreach_adamw.h"

#include <gtest/gtest.h>

#include <vector>

#include "nn/checkpoint.h"
#include "septa/error.h"

namespace septa::nn {
namespace {

std::vector<torch::Tensor> parameters(uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> out;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{7, 5}, {5}, {3, 4, 2}, {1}})
    out.push_back(torch::randn(shape).requires_grad_());
  return out;
}

TEST(ForeachAdamWTest, EqualsAdamWBitForBitOnTheCpu) {
  std::vector<torch::Tensor> a = parameters(3), b = parameters(3);
  const auto options = torch::optim::AdamWOptions(0.01).weight_decay(0.05).betas({0.8, 0.95});
  torch::optim::AdamW reference(a, options);
  ForeachAdamW foreach(b, options);
  torch::manual_seed(11);
  for (int step = 0; step < 6; ++step) {
    reference.zero_grad();
    foreach.zero_grad();
    for (size_t i = 0; i < a.size(); ++i) {
      // The last parameter gets no gradient in steps 1 and 2: its step count falls behind.
      if (i == a.size() - 1 && (step == 1 || step == 2)) {
        a[i].mutable_grad() = torch::Tensor();
        b[i].mutable_grad() = torch::Tensor();
        continue;
      }
      const torch::Tensor g = torch::randn(a[i].sizes()) * (step + 1);
      a[i].mutable_grad() = g.clone();
      b[i].mutable_grad() = g.clone();
    }
    for (auto& group : reference.param_groups()) group.options().set_lr(0.01 / (step + 1));
    for (auto& group : foreach.param_groups()) group.options().set_lr(0.01 / (step + 1));
    reference.step();
    foreach.step();
    for (size_t i = 0; i < a.size(); ++i)
      ASSERT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i << " after step " << step;
  }
  // Same state type and contents under the same keys (what checkpoints save).
  auto& ra = reference.state();
  auto& fb = foreach.state();
  for (size_t i = 0; i < a.size(); ++i) {
    auto& sa = static_cast<torch::optim::AdamWParamState&>(*ra.at(state_key<decltype(ra)>(a[i])));
    auto* sb = dynamic_cast<torch::optim::AdamWParamState*>(fb.at(state_key<decltype(fb)>(b[i])).get());
    ASSERT_NE(sb, nullptr);
    EXPECT_EQ(sa.step(), sb->step());
    EXPECT_EQ(sa.step(), i == a.size() - 1 ? 4 : 6);
    EXPECT_TRUE(torch::equal(sa.exp_avg(), sb->exp_avg()));
    EXPECT_TRUE(torch::equal(sa.exp_avg_sq(), sb->exp_avg_sq()));
  }
  EXPECT_FALSE(torch::equal(a[0], parameters(3)[0]));  // it did move
}

TEST(ForeachAdamWTest, RejectsAmsgrad) {
  std::vector<torch::Tensor> p = parameters(1);
  ForeachAdamW optimizer(p, torch::optim::AdamWOptions(0.1).amsgrad(true));
  p[0].mutable_grad() = torch::ones_like(p[0]);
  EXPECT_THROW(optimizer.step(), InternalError);
}

}  // namespace
}  // namespace septa::nn
