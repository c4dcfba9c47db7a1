// Multi-tensor AdamW (see the header for the update and its order of operations).
#include "nn/foreach_adamw.h"

#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "nn/checkpoint.h"
#include "septa/error.h"

namespace septa::nn {

torch::Tensor ForeachAdamW::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  step_scaled(1.0);
  return loss;
}

void ForeachAdamW::step_scaled(double s) {
  torch::NoGradGuard no_grad;
  auto& states = state();
  using Key = typename std::decay_t<decltype(states)>::key_type;
  for (auto& group : param_groups()) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    if (o.amsgrad()) throw InternalError("ForeachAdamW: amsgrad is not supported");
    // Parameters with a gradient, bucketed by their step count after this step (one bucket
    // unless some parameter missed earlier steps): the bias corrections depend on it.
    struct Lists {
      std::vector<torch::Tensor> params, grads, exp_avg, exp_avg_sq;
    };
    std::map<int64_t, Lists> buckets;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      if (p.grad().is_sparse()) throw InternalError("ForeachAdamW: sparse gradients are not supported");
      const Key key = state_key<decltype(states)>(p);
      auto it = states.find(key);
      if (it == states.end()) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        it = states.emplace(key, std::move(fresh)).first;
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      s.step(s.step() + 1);
      Lists& l = buckets[s.step()];
      l.params.push_back(p);
      l.grads.push_back(p.grad());
      l.exp_avg.push_back(s.exp_avg());
      l.exp_avg_sq.push_back(s.exp_avg_sq());
    }
    const double lr = o.lr(), wd = o.weight_decay(), eps = o.eps();
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    for (auto& [t, l] : buckets) {
      if (wd != 0) at::_foreach_mul_(l.params, 1 - lr * wd);
      at::_foreach_mul_(l.exp_avg, beta1);
      at::_foreach_add_(l.exp_avg, l.grads, (1 - beta1) * s);
      at::_foreach_mul_(l.exp_avg_sq, beta2);
      at::_foreach_addcmul_(l.exp_avg_sq, l.grads, l.grads, (1 - beta2) * s * s);
      const double correction1 = 1 - std::pow(beta1, t);
      const double correction2 = 1 - std::pow(beta2, t);
      std::vector<torch::Tensor> denom = at::_foreach_sqrt(l.exp_avg_sq);
      at::_foreach_div_(denom, std::sqrt(correction2));
      at::_foreach_add_(denom, eps);
      at::_foreach_addcdiv_(l.params, l.exp_avg, denom, -lr / correction1);
    }
  }
}

}  // namespace septa::nn
