// VBA with a conditional-VAE outcome p(y | x, z) (model.h): the nested IWAE estimate against the
// linear-Gaussian closed form (exact for every sample with the exact posteriors) and against a
// tiny case whose p(y | do(x)) is computed by quadrature over (z, u) for every y in {0, 1}^2.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/methods/vba/densities.h"
#include "nn/methods/vba/linear_gaussian.h"
#include "nn/test_util.h"

namespace septa::nn::vba {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

TEST(OutcomeCvae, LinearGaussianWithExactPosteriorsIsExactForEverySample) {
  testing::setup_torch();
  torch::Generator generator = cpu_generator(21);
  for (int64_t d : {1, 5}) {
    const LinearGaussian lg = LinearGaussian::draw(d, generator);
    const Triples data = lg.generate(1000, generator);
    const torch::Tensor truth = lg.log_p_do(data.y, data.x);
    Model model = lg.model(/*interventional=*/true);
    for (int64_t inner : {1, 4}) {
      model.outcome = lg.outcome_cvae(/*share=*/0.6, inner, /*exact_posterior=*/true);
      // The CVAE's own log-density equals the factorised one's for every (x, z, y).
      const torch::Tensor in = torch::cat({data.x, data.z}, 1);
      EXPECT_LT((model.outcome->log_prob(data.y, in, generator) - lg.outcome()->log_prob(data.y, in))
                    .abs().max().item<double>(), 1e-9);
      for (int64_t k : {1, 3}) {
        const Estimate estimate = log_p_do(model, data.y, data.x, k, generator);
        EXPECT_LT((estimate.log_p - truth).abs().max().item<double>(), 1e-5)
            << "d=" << d << " K'=" << inner << " K=" << k;
        EXPECT_NEAR(estimate.ess.mean().item<double>(), static_cast<double>(k), 1e-6);
      }
    }
    // The prior as u's posterior: a lower bound on average that more inner draws tighten.
    model.outcome = lg.outcome_cvae(0.6, 1, /*exact_posterior=*/false);
    const double gap1 = (truth - log_p_do(model, data.y, data.x, 1, generator).log_p).mean().item<double>();
    model.outcome->spec.iwae_k = 200;
    const double gap200 = (truth - log_p_do(model, data.y, data.x, 1, generator).log_p).mean().item<double>();
    EXPECT_GT(gap1, 0.05) << "d=" << d;
    EXPECT_LT(gap200, gap1 / 4) << "d=" << d;
    EXPECT_GT(gap200, -0.02) << "d=" << d;
  }
}

void set_linear(ConditionalImpl& module, std::vector<double> weight, std::vector<double> bias,
                double log_std) {
  torch::NoGradGuard no_grad;
  auto* linear = module.net[0]->as<torch::nn::Linear>();
  linear->weight.copy_(torch::tensor(weight, kDouble).reshape(linear->weight.sizes()));
  linear->bias.copy_(torch::tensor(bias, kDouble));
  if (module.log_std.defined()) module.log_std.fill_(log_std);
}

// x, z, u scalars; y two pixels. z ~ N(0, 1) = p(z), u ~ N(0, 1),
// p(y_d = 1 | x, z, u) = sigmoid(w_d . [x, z, u] + c_d); posteriors e(u | x, z, y) and
// q(z | x, y) linear-Gaussian and deliberately not the true ones.
Model tiny_model(int64_t inner) {
  Model model;
  model.prior = Prior(PriorSpec{1, 0, 0, Family::kGaussian, 1});
  model.outcome = Conditional(ConditionalSpec{2, 2, 0, Family::kBernoulli, /*latent=*/1, inner});
  model.encoder = Conditional(ConditionalSpec{3, 1, 0, Family::kGaussian});
  model.prior->to(torch::kFloat64);
  model.outcome->to(torch::kFloat64);
  model.encoder->to(torch::kFloat64);
  set_linear(*model.outcome->decoder, {0.8, -2.5, 2.0, -0.4, 1.5, 2.5}, {0.3, -0.2}, 0.0);
  // Proposals wider than their priors: bounded importance weights.
  set_linear(*model.outcome->posterior, {0.1, 0.2, 0.9, -0.7}, {0.1}, std::log(1.1));
  set_linear(*model.encoder, {-0.3, -0.8, 0.6}, {0.05}, std::log(1.2));
  return model;
}

// log p(y | do(x)) = log of the double integral of N(z) N(u) p(y | x, z, u), by the midpoint rule
// on [-10, 10]^2 (step 0.02: the integrand is smooth and Gaussian-tailed).  [4] for y = 00..11.
torch::Tensor quadrature_log_p_do(Model& model, double x) {
  constexpr int64_t kPoints = 1000;
  const torch::Tensor grid = -10.0 + (torch::arange(kPoints, kDouble) + 0.5) * (20.0 / kPoints);
  const torch::Tensor z = grid.reshape({-1, 1}).expand({kPoints, kPoints});  // [P][P]
  const torch::Tensor u = grid.reshape({1, -1}).expand({kPoints, kPoints});
  const torch::Tensor in = torch::stack({torch::full_like(z, x), z, u}, -1);  // [P][P][3]
  const torch::Tensor p1 = torch::sigmoid(model.outcome->decoder->params(in).first);  // [P][P][2]
  const double h = 20.0 / kPoints;
  const torch::Tensor density = torch::exp(-0.5 * (z.square() + u.square())) / (2 * M_PI) * h * h;
  std::vector<torch::Tensor> out;
  for (int y0 : {0, 1})
    for (int y1 : {0, 1}) {
      const torch::Tensor a = y0 ? p1.select(-1, 0) : 1 - p1.select(-1, 0);
      const torch::Tensor b = y1 ? p1.select(-1, 1) : 1 - p1.select(-1, 1);
      out.push_back((density * a * b).sum().log());
    }
  return torch::stack(out);
}

TEST(OutcomeCvae, NestedBoundAgainstQuadratureOnATinyEnumerableCase) {
  testing::setup_torch();
  torch::NoGradGuard no_grad;
  torch::Generator generator = cpu_generator(31);
  Model model = tiny_model(/*inner=*/1);
  const torch::Tensor ys = torch::tensor({0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0}, kDouble).reshape({4, 2});
  constexpr int64_t kRepeats = 40000;
  for (double x : {-1.0, 0.5}) {
    const torch::Tensor exact = quadrature_log_p_do(model, x);  // [4]
    EXPECT_NEAR(exact.exp().sum().item<double>(), 1.0, 1e-9) << "x=" << x;
    for (int64_t yi = 0; yi < 4; ++yi) {
      const torch::Tensor y = ys[yi].expand({kRepeats, 2});
      const torch::Tensor xs = torch::full({kRepeats, 1}, x, kDouble);
      const double truth = exact[yi].item<double>();
      // K = K' = 1: exp of the estimate is unbiased for p(y | do(x)) (within 4 standard errors),
      // its logarithm strictly below on average. The same for naive Monte Carlo over p(z).
      model.outcome->spec.iwae_k = 1;
      for (const bool naive : {false, true}) {
        const torch::Tensor log_p = naive ? naive_log_p_do(model, y, xs, 1, generator).log_p
                                          : log_p_do(model, y, xs, 1, generator).log_p;
        const torch::Tensor w = log_p.exp() / std::exp(truth);
        const double error = w.std().item<double>() / std::sqrt(static_cast<double>(kRepeats));
        EXPECT_NEAR(w.mean().item<double>(), 1.0, 4 * error) << "x=" << x << " y=" << yi << " naive " << naive;
        EXPECT_LT(log_p.mean().item<double>(), truth - 0.01) << "x=" << x << " y=" << yi << " naive " << naive;
      }
      const double gap1 = truth - log_p_do(model, y, xs, 1, generator).log_p.mean().item<double>();
      // K = 100, K' = 10: the bound stays below the exact value on average and nearly closes.
      model.outcome->spec.iwae_k = 10;
      const torch::Tensor tight = log_p_do(model, y.narrow(0, 0, 2000), xs.narrow(0, 0, 2000), 100, generator).log_p;
      const double gap = truth - tight.mean().item<double>();
      const double error = tight.std().item<double>() / std::sqrt(2000.0);
      EXPECT_GT(gap, -3 * error) << "x=" << x << " y=" << yi;
      EXPECT_LT(gap, std::min(0.01, gap1 / 10)) << "x=" << x << " y=" << yi;
    }
  }
}

}  // namespace
}  // namespace septa::nn::vba
