// Clipping by the global gradient norm folded into a ForeachAdamW step (see the header).
#include "nn/foreach_clip.h"

#include <algorithm>
#include <vector>

namespace septa::nn {

double clipped_step(ForeachAdamW& optimizer, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params())
      if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  const double norm = torch::stack(at::_foreach_norm(grads, 2)).norm().item<double>();  // one sync
  optimizer.step_scaled(std::min(1.0, max_norm / (norm + 1e-6)));
  return norm;
}

}  // namespace septa::nn
