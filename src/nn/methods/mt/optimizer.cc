#include "nn/methods/mt/optimizer.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "nn/checkpoint.h"
#include "septa/error.h"

namespace septa::nn::mt {

double clipped_adam_step(torch::optim::Adam& optimizer, double lr, double max_norm) {
  torch::NoGradGuard no_grad;
  if (optimizer.param_groups().size() != 1) throw InternalError("clipped_adam_step: one parameter group expected");
  auto& group = optimizer.param_groups().front();
  const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
  if (o.weight_decay() != 0 || o.amsgrad()) throw InternalError("clipped_adam_step: no weight decay or AMSGrad");
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas()), eps = o.eps();
  auto& states = optimizer.state();
  std::vector<torch::Tensor> params, grads, m, v;
  int64_t step = 0;
  for (auto& p : group.params()) {
    if (!p.grad().defined()) continue;
    const auto key = state_key<decltype(states)>(p);
    if (states.find(key) == states.end()) {
      auto state = std::make_unique<torch::optim::AdamParamState>();
      state->step(0);
      state->exp_avg(torch::zeros_like(p));
      state->exp_avg_sq(torch::zeros_like(p));
      states[key] = std::move(state);
    }
    auto& state = static_cast<torch::optim::AdamParamState&>(*states.find(key)->second);
    state.step(state.step() + 1);
    step = state.step();
    params.push_back(p);
    grads.push_back(p.grad());
    m.push_back(state.exp_avg());
    v.push_back(state.exp_avg_sq());
  }
  if (params.empty()) return 0.0;
  const double norm = torch::stack(at::_foreach_norm(grads, 2)).norm().item<double>();  // one sync
  const double c = std::min(1.0, max_norm / (norm + 1e-6));
  at::_foreach_mul_(m, at::Scalar(beta1));
  at::_foreach_add_(m, grads, at::Scalar((1 - beta1) * c));
  at::_foreach_mul_(v, at::Scalar(beta2));
  at::_foreach_addcmul_(v, grads, grads, at::Scalar((1 - beta2) * c * c));
  const double correction1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double correction2 = 1 - std::pow(beta2, static_cast<double>(step));
  auto denominator = at::_foreach_sqrt(v);
  at::_foreach_div_(denominator, at::Scalar(std::sqrt(correction2)));
  at::_foreach_add_(denominator, at::Scalar(eps));
  at::_foreach_addcdiv_(params, m, denominator, at::Scalar(-lr / correction1));
  return norm;
}

}  // namespace septa::nn::mt
