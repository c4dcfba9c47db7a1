// AdamW (Loshchilov & Hutter 2019) with the update of all parameters in a group done by
// multi-tensor ("foreach") operations, so that a step is about ten operations instead of about
// ten per parameter. On a GPU, where a small model's step is bound by kernel launches (about 1000
// for a ViT of 100 parameter tensors), this is most of the optimiser's cost; on the CPU the
// foreach operations run the same per-tensor kernels in the same order as torch::optim::AdamW,
// so the result is bit-identical (tests/nn/foreach_adamw_test.cc).
//
// Per parameter p with gradient g, step t (torch::optim::AdamW's order of operations):
//   p   *= 1 - lr wd
//   m    = beta1 m + (1 - beta1) g;   v = beta2 v + (1 - beta2) g^2
//   p   -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The state is torch::optim::AdamW's (AdamWParamState under the same keys), so checkpoints and
// resumed runs treat both alike. amsgrad is not supported (InternalError).
#pragma once

#include <torch/torch.h>

namespace septa::nn {

class ForeachAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
  // The step on every gradient taken as s g, s folded into the moment updates
  // (m = beta1 m + (1 - beta1) s g, v = beta2 v + (1 - beta2) s^2 g^2) so the gradients are not
  // rewritten; step() is step_scaled(1) bit for bit. Used by clipping (nn/foreach_clip.h).
  void step_scaled(double s);
};

}  // namespace septa::nn
