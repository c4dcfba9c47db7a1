// Hand-written log-densities and importance-weight diagnostics (formulas in densities.h).
#include "nn/methods/vba/densities.h"

#include <cmath>

namespace septa::nn::vba {

torch::Tensor normal_log_prob(const torch::Tensor& x, const torch::Tensor& mean,
                              const torch::Tensor& log_std) {
  const double half_log_two_pi = 0.5 * std::log(2.0 * M_PI);
  const torch::Tensor standardised = (x - mean) * torch::exp(-log_std);
  return (-log_std - half_log_two_pi - 0.5 * standardised.square()).sum(/*dim=*/-1);
}

torch::Tensor bernoulli_log_prob(const torch::Tensor& x, const torch::Tensor& logits) {
  return (x * logits - torch::nn::functional::softplus(logits)).sum(/*dim=*/-1);
}

torch::Tensor log_mean_exp(const torch::Tensor& log_weights) {
  const double k = static_cast<double>(log_weights.size(-1));
  return torch::logsumexp(log_weights, /*dim=*/-1) - std::log(k);
}

WeightStats weight_stats(const torch::Tensor& log_weights) {
  const int64_t k = log_weights.size(-1);
  const torch::Tensor p = torch::softmax(log_weights, /*dim=*/-1);
  const torch::Tensor sum_sq = p.square().sum(/*dim=*/-1);
  WeightStats stats;
  stats.ess = 1.0 / sum_sq;
  if (k == 1) {
    stats.std_error = torch::zeros_like(sum_sq);
  } else {
    const double kd = static_cast<double>(k);
    stats.std_error = ((kd * sum_sq - 1.0).clamp_min(0.0) / (kd - 1.0)).sqrt();
  }
  return stats;
}

}  // namespace septa::nn::vba
