// Regression adjustment and inverse propensity weighting (formulas in baselines.h).
#include "nn/methods/vba/baselines.h"

#include <cmath>


#include "nn/methods/vba/densities.h"

namespace septa::nn::vba {
namespace {

torch::Tensor with_ones(const torch::Tensor& a) {  // [N][F] -> [N][F + 1]
  return torch::cat({a, torch::ones({a.size(0), 1}, a.options())}, /*dim=*/1);
}

// Weighted least squares: argmin_W sum_i w_i ||t_i - W^T m_i||^2 = (M^T diag(w) M)^-1 M^T diag(w) T.
torch::Tensor least_squares(const torch::Tensor& m, const torch::Tensor& t, const torch::Tensor& w) {
  const torch::Tensor mw = m * w.unsqueeze(1);
  const torch::Tensor gram = mw.transpose(0, 1).mm(m);
  const torch::Tensor ridge = 1e-9 * torch::eye(m.size(1), m.options()) * gram.diagonal().mean();
  return at::linalg_solve(gram + ridge, mw.transpose(0, 1).mm(t), /*left=*/true);
}

}  // namespace

torch::Tensor GaussianAdjustment::log_prob(const torch::Tensor& y, const torch::Tensor& x) const {
  const torch::Tensor mean = with_ones(x.to(torch::kFloat64)).mm(weights);  // [B][Y]
  const torch::Tensor chol = at::linalg_cholesky(covariance);            // [Y][Y] lower
  const torch::Tensor r = (y.to(torch::kFloat64) - mean).transpose(0, 1);   // [Y][B]
  const torch::Tensor solved = at::linalg_solve_triangular(chol, r, /*upper=*/false, /*left=*/true, /*unitriangular=*/false);
  const double k = static_cast<double>(covariance.size(0));
  // log N = -0.5 ||L^-1 r||^2 - sum log diag(L) - 0.5 Y log(2 pi)
  return -0.5 * solved.square().sum(0) - chol.diagonal().log().sum() - 0.5 * k * std::log(2 * M_PI);
}

GaussianAdjustment regression_adjustment(const Triples& train) {
  const torch::Tensor x = train.x.to(torch::kFloat64), y = train.y.to(torch::kFloat64),
                      z = train.z.to(torch::kFloat64);
  const int64_t n = x.size(0), xf = x.size(1), zf = z.size(1);
  const torch::Tensor m = with_ones(torch::cat({x, z}, 1));
  const torch::Tensor coef = least_squares(m, y, torch::ones({n}, m.options()));  // [X+Z+1][Y]
  const torch::Tensor residual = y - m.mm(coef);
  const torch::Tensor s2 = residual.square().mean(0);                             // [Y]
  const torch::Tensor mu_z = z.mean(0);                                            // [Z]
  const torch::Tensor zc = z - mu_z;
  const torch::Tensor sigma_z = zc.transpose(0, 1).mm(zc) / static_cast<double>(n);  // [Z][Z]
  const torch::Tensor b_x = coef.narrow(0, 0, xf), b_z = coef.narrow(0, xf, zf);
  const torch::Tensor a = coef[xf + zf];
  GaussianAdjustment out;
  out.weights = torch::cat({b_x, (a + mu_z.unsqueeze(0).mm(b_z).squeeze(0)).unsqueeze(0)}, 0);
  out.covariance = b_z.transpose(0, 1).mm(sigma_z).mm(b_z) + torch::diag(s2);
  return out;
}

GaussianAdjustment inverse_propensity_weighting(const Triples& train, double* ess_fraction) {
  const torch::Tensor x = train.x.to(torch::kFloat64), y = train.y.to(torch::kFloat64),
                      z = train.z.to(torch::kFloat64);
  const int64_t n = x.size(0);
  const torch::Tensor ones = torch::ones({n}, x.options());
  const torch::Tensor mz = with_ones(z);
  const torch::Tensor propensity = least_squares(mz, x, ones);      // [Z+1][X]
  const torch::Tensor x_given_z = mz.mm(propensity);
  const torch::Tensor v = (x - x_given_z).square().mean(0);         // [X]
  const torch::Tensor m = x.mean(0), u = x.var(0, /*unbiased=*/false);
  const torch::Tensor log_w = normal_log_prob(x, m, 0.5 * u.log()) -
                              normal_log_prob(x, x_given_z, 0.5 * v.log());  // [N]
  torch::Tensor w = torch::softmax(log_w, 0) * static_cast<double>(n);    // mean 1
  if (ess_fraction) *ess_fraction = (1.0 / w.div(n).square().sum()).item<double>() / n;
  const torch::Tensor mx = with_ones(x);
  GaussianAdjustment out;
  out.weights = least_squares(mx, y, w);                             // [X+1][Y]
  const torch::Tensor residual = y - mx.mm(out.weights);
  out.covariance = torch::diag((residual.square() * w.unsqueeze(1)).sum(0) / w.sum());
  return out;
}

}  // namespace septa::nn::vba
