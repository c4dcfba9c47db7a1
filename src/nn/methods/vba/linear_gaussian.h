// The linear-Gaussian benchmark with exact answers (docs/vba.md):
//   per dimension j:  Z_j ~ N(0, 1),  X_j = c_zx,j Z_j + s_x,j e_j,  Y_j = c_zy,j Z_j + c_xy,j X_j + s_y,j e'_j
//   with c_zx ~ U(0, 5), c_zy ~ U(-10, -5), c_xy ~ U(0, 3), s_x ~ U(0, 1), s_y ~ U(0, 3).
// All tensors float64 unless said; D dimensions, B rows.
#pragma once

#include <torch/torch.h>

#include "nn/methods/vba/model.h"

namespace septa::nn::vba {

struct Triples {
  torch::Tensor x, y, z;  // [N][X], [N][Y], [N][Z]
};

struct LinearGaussian {
  torch::Tensor c_zx, c_zy, c_xy, s_x, s_y;  // [D] each

  // Coefficients drawn from the ranges above.
  static LinearGaussian draw(int64_t d, torch::Generator generator);
  int64_t dims() const { return c_zx.size(0); }

  // n observational samples; out_of_distribution draws Z ~ U(-7, 7) instead of N(0, 1).
  Triples generate(int64_t n, torch::Generator generator, bool out_of_distribution = false) const;

  // Truth: log p(y | do(x)) = sum_j log N(y_j; c_xy x_j, s_y^2 + c_zy^2).  [B]
  torch::Tensor log_p_do(const torch::Tensor& y, const torch::Tensor& x) const;
  // Confounded conditional: log p(y | x) = sum_j log N(y_j; a_j x_j, v_j) with
  //   a = c_zy c_zx / (c_zx^2 + s_x^2) + c_xy,  v = c_zy^2 s_x^2 / (c_zx^2 + s_x^2) + s_y^2.  [B]
  torch::Tensor log_p_conditional(const torch::Tensor& y, const torch::Tensor& x) const;

  // The true components as linear modules (float64):
  Prior prior() const;                      // N(0, I)
  Conditional outcome() const;              // p(y | x, z) = N(c_xy x + c_zy z, s_y^2)
  // The same p(y | x, z) as a conditional VAE (latent D, IWAE K' = iwae_k): y's noise split as
  //   y = c_xy x + c_zy z + b u + s e,  u, e ~ N(0, I),  b = sqrt(share) s_y,  s = sqrt(1 - share) s_y,
  // so p(y | x, z) = E_u N(y; c_xy x + c_zy z + b u, s^2) = N(c_xy x + c_zy z, s_y^2); with
  // exact_posterior the CVAE's e(u | [x, z], y) is u's posterior N(g r, v), r = y - c_xy x - c_zy z,
  // v = 1 / (1 + b^2 / s^2), g = v b / s^2 (every weight equals p(y | x, z)); otherwise it is
  // the prior N(0, I). share in (0, 1).
  Conditional outcome_cvae(double share, int64_t iwae_k, bool exact_posterior) const;
  Conditional conditional() const;          // p(y | x) above
  // Interventional posterior q*(z | x, y) proportional to p(y | x, z) p(z):
  //   precision P = 1 + c_zy^2 / s_y^2,  mean = c_zy (y - c_xy x) / (s_y^2 P).
  Conditional interventional_posterior() const;
  // Observational posterior p(z | x, y) proportional to p(z) p(x | z) p(y | x, z):
  //   P = 1 + c_zx^2 / s_x^2 + c_zy^2 / s_y^2,  mean = (c_zx x / s_x^2 + c_zy (y - c_xy x) / s_y^2) / P.
  Conditional observational_posterior() const;
  // All four together.
  Model model(bool interventional) const;
};

}  // namespace septa::nn::vba
