// The linear-Gaussian generator, its closed forms and its true components (see the header).
#include "nn/methods/vba/linear_gaussian.h"

#include "nn/methods/vba/densities.h"

namespace septa::nn::vba {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor uniform_in(int64_t d, double low, double high, torch::Generator generator) {
  return low + (high - low) * torch::rand({d}, generator, kDouble);
}

// A linear Gaussian conditional over `inputs` blocks of D features each, with weight
// [D][blocks * D] = [diag(w_0), diag(w_1), ...], zero bias and log-std `log_std` [D].
Conditional diagonal_linear(const std::vector<torch::Tensor>& diagonals, const torch::Tensor& log_std) {
  const int64_t d = log_std.size(0);
  const int64_t blocks = static_cast<int64_t>(diagonals.size());
  Conditional module(ConditionalSpec{blocks * d, d, /*hidden=*/0, Family::kGaussian});
  module->to(torch::kFloat64);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (const auto& w : diagonals) parts.push_back(torch::diag(w));
  auto* linear = module->net[0]->as<torch::nn::Linear>();
  linear->weight.copy_(torch::cat(parts, /*dim=*/1));
  linear->bias.zero_();
  module->log_std.copy_(log_std);
  return module;
}

}  // namespace

LinearGaussian LinearGaussian::draw(int64_t d, torch::Generator generator) {
  LinearGaussian lg;
  lg.c_zx = uniform_in(d, 0, 5, generator);
  lg.c_zy = uniform_in(d, -10, -5, generator);
  lg.c_xy = uniform_in(d, 0, 3, generator);
  lg.s_x = uniform_in(d, 0, 1, generator);
  lg.s_y = uniform_in(d, 0, 3, generator);
  return lg;
}

Triples LinearGaussian::generate(int64_t n, torch::Generator generator, bool out_of_distribution) const {
  const int64_t d = dims();
  Triples t;
  t.z = out_of_distribution ? -7.0 + 14.0 * torch::rand({n, d}, generator, kDouble)
                            : torch::randn({n, d}, generator, kDouble);
  t.x = c_zx * t.z + s_x * torch::randn({n, d}, generator, kDouble);
  t.y = c_zy * t.z + c_xy * t.x + s_y * torch::randn({n, d}, generator, kDouble);
  return t;
}

torch::Tensor LinearGaussian::log_p_do(const torch::Tensor& y, const torch::Tensor& x) const {
  const torch::Tensor variance = s_y.square() + c_zy.square();
  return normal_log_prob(y.to(torch::kFloat64), c_xy * x.to(torch::kFloat64), 0.5 * variance.log());
}

torch::Tensor LinearGaussian::log_p_conditional(const torch::Tensor& y, const torch::Tensor& x) const {
  const torch::Tensor var_x = c_zx.square() + s_x.square();
  const torch::Tensor slope = c_zy * c_zx / var_x + c_xy;
  const torch::Tensor variance = c_zy.square() * s_x.square() / var_x + s_y.square();
  return normal_log_prob(y.to(torch::kFloat64), slope * x.to(torch::kFloat64), 0.5 * variance.log());
}

Prior LinearGaussian::prior() const {
  Prior module(PriorSpec{dims(), /*latent=*/0, /*hidden=*/0, Family::kGaussian, /*iwae_k=*/1});
  module->to(torch::kFloat64);  // location 0, log-std 0: N(0, I)
  return module;
}

Conditional LinearGaussian::outcome() const { return diagonal_linear({c_xy, c_zy}, s_y.log()); }

Conditional LinearGaussian::outcome_cvae(double share, int64_t iwae_k, bool exact_posterior) const {
  const int64_t d = dims();
  const torch::Tensor b = std::sqrt(share) * s_y, s = std::sqrt(1.0 - share) * s_y;  // [D]
  const torch::Tensor v = 1.0 / (1.0 + b.square() / s.square());
  const torch::Tensor g = v * b / s.square();
  const torch::Tensor zero = torch::zeros({d}, kDouble);
  Conditional module(ConditionalSpec{2 * d, d, /*hidden=*/0, Family::kGaussian, /*latent=*/d, iwae_k});
  module->to(torch::kFloat64);
  // decoder inputs [x, z, u]; posterior inputs [x, z, y].
  copy_weights(*diagonal_linear({c_xy, c_zy, b}, s.log()), *module->decoder);
  if (exact_posterior)
    copy_weights(*diagonal_linear({-g * c_xy, -g * c_zy, g}, 0.5 * v.log()), *module->posterior);
  else
    copy_weights(*diagonal_linear({zero, zero, zero}, zero), *module->posterior);
  return module;
}

Conditional LinearGaussian::conditional() const {
  const torch::Tensor var_x = c_zx.square() + s_x.square();
  const torch::Tensor variance = c_zy.square() * s_x.square() / var_x + s_y.square();
  return diagonal_linear({c_zy * c_zx / var_x + c_xy}, 0.5 * variance.log());
}

Conditional LinearGaussian::interventional_posterior() const {
  const torch::Tensor vy = s_y.square();
  const torch::Tensor precision = 1.0 + c_zy.square() / vy;
  const torch::Tensor gain = c_zy / (vy * precision);  // mean = gain (y - c_xy x)
  return diagonal_linear({-gain * c_xy, gain}, -0.5 * precision.log());
}

Conditional LinearGaussian::observational_posterior() const {
  const torch::Tensor vx = s_x.square(), vy = s_y.square();
  const torch::Tensor precision = 1.0 + c_zx.square() / vx + c_zy.square() / vy;
  return diagonal_linear({(c_zx / vx - c_zy * c_xy / vy) / precision, c_zy / (vy * precision)},
                         -0.5 * precision.log());
}

Model LinearGaussian::model(bool interventional) const {
  return Model{prior(), outcome(),
               interventional ? interventional_posterior() : observational_posterior(),
               conditional()};
}

}  // namespace septa::nn::vba
