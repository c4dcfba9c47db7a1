// A fitted VBA model: the three components and the confounded baseline, and the estimators
// built on them. B rows, K importance samples, X / Y / Z the feature counts of x, y, z.
#pragma once

#include <torch/torch.h>

#include "nn/methods/vba/components.h"

namespace septa::nn::vba {

struct Model {
  Prior prior{nullptr};              // p(z)
  Conditional outcome{nullptr};      // p(y | x, z), inputs [x, z]
  Conditional encoder{nullptr};      // q(z | x, y), inputs [x, y]
  Conditional conditional{nullptr};  // p(y | x), the confounded baseline (may be absent)
};

// An estimate of log p(y | do(x)) per row with the diagnostics of its importance weights.
struct Estimate {
  torch::Tensor log_p;      // [B]
  torch::Tensor ess;        // [B] effective sample size in [1, K]
  torch::Tensor std_error;  // [B] delta-method standard error of log_p (densities.h)
};

// The K-sample variational backdoor bound's log-weights, differentiable (training):
//   z_k ~ q(. | x, y),  log w_k = log p(z_k) + log p(y | x, z_k) - log q(z_k | x, y)
//   log p(y | do(x)) >= E[ log (1/K) sum_k w_k ]   (Israel, Grover, Van den Broeck 2023, eq. 5)
// When p(y | x, z) is a conditional VAE (latent L > 0), log p(y | x, z_k) is itself its IWAE
// estimate with K' = spec.iwae_k draws u_kj ~ e(. | [x, z_k], y):
//   p_hat(y | x, z_k) = (1/K') sum_j p(y | x, z_k, u_kj) N(u_kj; 0, I) / e(u_kj | [x, z_k], y),
// an unbiased estimate of p(y | x, z_k) given z_k; so (1/K) sum_k w_k stays unbiased for
// p(y | do(x)) and its logarithm a lower bound in expectation (Jensen), tight as K, K' grow.
// y [B][Y], x [B][X] -> [B][K].
torch::Tensor vba_log_weights(Model& model, const torch::Tensor& y, const torch::Tensor& x,
                              int64_t k, torch::Generator generator);

// log (1/K) sum_k w_k of the bound above, without gradients, in chunks of rows.
Estimate log_p_do(Model& model, const torch::Tensor& y, const torch::Tensor& x, int64_t k,
                  torch::Generator generator);

// Naive Monte Carlo over the prior (unbiased in p, high variance in high dimension):
//   z_k ~ p(z),  log p(y | do(x)) ~ log (1/K) sum_k p(y | x, z_k).
Estimate naive_log_p_do(Model& model, const torch::Tensor& y, const torch::Tensor& x, int64_t k,
                        torch::Generator generator);

// log p(y | x) of the confounded baseline: [B] (a conditional VAE's IWAE bound draws from
// `generator`).
torch::Tensor conditional_log_p(Model& model, const torch::Tensor& y, const torch::Tensor& x,
                                torch::Generator generator);

// n draws of y ~ p(y | do(x)): z ~ p(z), y ~ p(y | x, z), for one x [X] -> [n][Y].
torch::Tensor sample_do(Model& model, const torch::Tensor& x, int64_t n, torch::Generator generator);
// n draws of y ~ p(y | x) from the confounded baseline, for one x [X] -> [n][Y].
torch::Tensor sample_conditional(Model& model, const torch::Tensor& x, int64_t n,
                                 torch::Generator generator);

}  // namespace septa::nn::vba
