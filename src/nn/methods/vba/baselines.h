// Classical backdoor baselines for low-dimensional x (the reviewers' request, docs/vba.md), both
// giving a Gaussian p(y | do(x)) = N(y; W^T [x; 1], S). float64; N rows, X / Y / Z features.
#pragma once

#include <torch/torch.h>

#include "nn/methods/vba/linear_gaussian.h"

namespace septa::nn::vba {

struct GaussianAdjustment {
  torch::Tensor weights;     // [X + 1][Y] (last row: intercept)
  torch::Tensor covariance;  // [Y][Y]
  // log N(y; W^T [x; 1], S) by a Cholesky factor: y [B][Y], x [B][X] -> [B].
  torch::Tensor log_prob(const torch::Tensor& y, const torch::Tensor& x) const;
};

// Regression adjustment: least squares y ~ B_x x + B_z z + a with diagonal residual variance s^2,
// z ~ N(mu_z, Sigma_z) by moments; then the backdoor integral in closed form:
//   p(y | do(x)) = N(y; B_x x + B_z mu_z + a, B_z Sigma_z B_z^T + diag(s^2)).
// Exact (up to estimation error) for the linear-Gaussian model.
GaussianAdjustment regression_adjustment(const Triples& train);

// Inverse propensity weighting with a Gaussian marginal structural model: propensity
// p(x | z) = N(x; C z + c, diag v) and marginal p(x) = N(x; m, diag u) fitted by least squares;
// stabilised weights w_i = p(x_i) / p(x_i | z_i) normalised to mean 1; weighted least squares
// y ~ W^T [x; 1] with weighted residual variance. The weights are a product over x's features:
// usable only where x is low-dimensional (their spread is reported as ess_fraction).
GaussianAdjustment inverse_propensity_weighting(const Triples& train, double* ess_fraction = nullptr);

}  // namespace septa::nn::vba
