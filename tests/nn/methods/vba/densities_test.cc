// Hand-checked log-densities, importance-weight diagnostics, straight-through gradients, and the
// linear-Gaussian closed forms against the estimators they validate.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/methods/vba/densities.h"
#include "nn/methods/vba/linear_gaussian.h"
#include "nn/test_util.h"

namespace septa::nn::vba {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

torch::Tensor t(std::vector<double> v) { return torch::tensor(v, kDouble); }

TEST(Densities, NormalAgainstHandValues) {
  // log N(1; 0, 1) = -0.5 log(2 pi) - 0.5;  log N(2; 1, 2^2) = -log 2 - 0.5 log(2 pi) - 1/8
  const double a = -1.4189385332046727, b = -1.7370857137646178;
  EXPECT_NEAR(normal_log_prob(t({1}), t({0}), t({0})).item<double>(), a, 1e-12);
  EXPECT_NEAR(normal_log_prob(t({2}), t({1}), t({std::log(2.0)})).item<double>(), b, 1e-12);
  // Summed over the last dimension, broadcast over rows.
  const torch::Tensor rows = normal_log_prob(t({1, 2, 1, 2}).reshape({2, 2}), t({0, 1}),
                                             t({0, std::log(2.0)}));
  EXPECT_NEAR(rows[0].item<double>(), a + b, 1e-12);
  EXPECT_NEAR(rows[1].item<double>(), a + b, 1e-12);
}

TEST(Densities, BernoulliAgainstHandValues) {
  EXPECT_NEAR(bernoulli_log_prob(t({1}), t({0})).item<double>(), std::log(0.5), 1e-12);
  // log(1 - sigmoid(2)) = -log(1 + e^2)
  EXPECT_NEAR(bernoulli_log_prob(t({0}), t({2})).item<double>(), -std::log1p(std::exp(2.0)), 1e-12);
  // Far tails stay finite: log sigmoid(-30) = -30 - log(1 + e^-30)
  EXPECT_NEAR(bernoulli_log_prob(t({1}), t({-30})).item<double>(), -30.0 - std::log1p(std::exp(-30.0)),
              1e-12);
  EXPECT_NEAR(bernoulli_log_prob(t({0}), t({40})).item<double>(), -40.0, 1e-12);
  // Sum over features: x = (1, 0), p = (0.8, 0.3)
  const double l1 = std::log(0.8 / 0.2), l2 = std::log(0.3 / 0.7);
  EXPECT_NEAR(bernoulli_log_prob(t({1, 0}), t({l1, l2})).item<double>(), std::log(0.8 * 0.7), 1e-12);
}

TEST(Densities, GradientsMatchFiniteDifferences) {
  const torch::Tensor x = t({0.3, -1.2, 2.0});
  for (int family = 0; family < 2; ++family) {
    torch::Tensor mean = t({0.1, 0.5, -0.7}).requires_grad_(true);
    const torch::Tensor log_std = t({0.2, -0.4, 0.9});
    const torch::Tensor target = family == 0 ? x : t({1, 0, 1});
    auto f = [&](const torch::Tensor& m) {
      return family == 0 ? normal_log_prob(target, m, log_std) : bernoulli_log_prob(target, m);
    };
    f(mean).backward();
    for (int i = 0; i < 3; ++i) {
      const double h = 1e-6;
      torch::Tensor plus = mean.detach().clone(), minus = mean.detach().clone();
      plus[i] += h;
      minus[i] -= h;
      const double fd = (f(plus).item<double>() - f(minus).item<double>()) / (2 * h);
      EXPECT_NEAR(mean.grad()[i].item<double>(), fd, 1e-6) << "family " << family << " i " << i;
    }
  }
}

TEST(Densities, LogMeanExpAndWeightStats) {
  EXPECT_NEAR(log_mean_exp(t({0, std::log(3.0)})).item<double>(), std::log(2.0), 1e-12);
  EXPECT_NEAR(log_mean_exp(t({-1000, -1000})).item<double>(), -1000.0, 1e-9);
  // Equal weights: ESS = K, no spread.
  WeightStats equal = weight_stats(torch::full({1, 4}, -7.0, kDouble));
  EXPECT_NEAR(equal.ess.item<double>(), 4.0, 1e-12);
  EXPECT_NEAR(equal.std_error.item<double>(), 0.0, 1e-12);
  // One weight dominates: ESS -> 1, standard error -> sqrt((K - 1) / (K - 1)) = 1.
  WeightStats one = weight_stats(t({0, -800, -800, -800}).reshape({1, 4}));
  EXPECT_NEAR(one.ess.item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(one.std_error.item<double>(), 1.0, 1e-12);
  // Weights (1, 3): p = (1/4, 3/4), ESS = 1 / (1/16 + 9/16) = 1.6; sd(w) / (sqrt(2) mean(w)) with
  // sd = sqrt(2) (K - 1 = 1) and mean 2: 0.5.
  WeightStats two = weight_stats(t({0, std::log(3.0)}).reshape({1, 2}));
  EXPECT_NEAR(two.ess.item<double>(), 1.6, 1e-12);
  EXPECT_NEAR(two.std_error.item<double>(), 0.5, 1e-12);
}

TEST(Components, BernoulliStraightThroughPassesTheProbabilityGradient) {
  testing::setup_torch();
  Conditional module(ConditionalSpec{2, 3, 0, Family::kBernoulli});
  module->to(torch::kFloat64);
  torch::Generator generator = cpu_generator(3);
  const torch::Tensor in = torch::zeros({1, 2}, kDouble);
  const torch::Tensor z = module->sample(in, generator);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(z[0][i].item<double>() == 0.0 || z[0][i].item<double>() == 1.0);
  z.sum().backward();
  auto* linear = module->net[0]->as<torch::nn::Linear>();
  const torch::Tensor p = torch::sigmoid(linear->bias.detach());
  EXPECT_TRUE(torch::allclose(linear->bias.grad(), p * (1 - p), 1e-12, 1e-12));
}

TEST(LinearGaussian, KOneWithTheInterventionalPosteriorIsExactForEverySample) {
  testing::setup_torch();
  torch::Generator generator = cpu_generator(11);
  for (int64_t d : {1, 5, 20}) {
    const LinearGaussian lg = LinearGaussian::draw(d, generator);
    const Triples data = lg.generate(2000, generator);
    Model model = lg.model(/*interventional=*/true);
    const Estimate estimate = log_p_do(model, data.y, data.x, /*k=*/1, generator);
    const torch::Tensor truth = lg.log_p_do(data.y, data.x);
    const double worst = (estimate.log_p - truth).abs().max().item<double>();
    EXPECT_LT(worst, 1e-5) << "d=" << d;
    // Zero variance: a second draw gives the same value.
    const Estimate again = log_p_do(model, data.y, data.x, /*k=*/3, generator);
    EXPECT_LT((again.log_p - truth).abs().max().item<double>(), 1e-5);
    EXPECT_NEAR(again.ess.mean().item<double>(), 3.0, 1e-6);

    // The observational posterior also carries p(x | z): a strictly lower bound on average.
    Model observational = lg.model(/*interventional=*/false);
    const Estimate biased = log_p_do(observational, data.y, data.x, /*k=*/1, generator);
    const double gap = (truth - biased.log_p).mean().item<double>();
    EXPECT_GT(gap, 0.01) << "d=" << d;
    // More samples tighten the bound but stay below the truth on average.
    const Estimate tighter = log_p_do(observational, data.y, data.x, /*k=*/50, generator);
    const double gap50 = (truth - tighter.log_p).mean().item<double>();
    EXPECT_LT(gap50, gap);
    EXPECT_GT(gap50, -0.05);
  }
}

TEST(LinearGaussian, ClosedFormsMatchTheBackdoorIntegralAndTheData) {
  testing::setup_torch();
  torch::Generator generator = cpu_generator(5);
  const LinearGaussian lg = LinearGaussian::draw(1, generator);
  const Triples data = lg.generate(200, generator);
  Model model = lg.model(true);
  // p(y | do(x)) = E_{p(z)} p(y | x, z), by brute Monte Carlo over the prior (d = 1).
  const Estimate naive = naive_log_p_do(model, data.y, data.x, /*k=*/200000, generator);
  EXPECT_LT((naive.log_p - lg.log_p_do(data.y, data.x)).abs().mean().item<double>(), 0.02);
  // The conditional module equals the closed form.
  EXPECT_TRUE(torch::allclose(conditional_log_p(model, data.y, data.x, generator),
                              lg.log_p_conditional(data.y, data.x), 1e-10, 1e-10));
  // The closed-form p(y | x) matches least squares of y on x over many samples.
  const Triples big = lg.generate(400000, generator);
  const double slope = ((big.x * big.y).mean() / big.x.square().mean()).item<double>();
  const double residual = (big.y - slope * big.x).square().mean().item<double>();
  const torch::Tensor var_x = lg.c_zx.square() + lg.s_x.square();
  const double a = (lg.c_zy * lg.c_zx / var_x + lg.c_xy).item<double>();
  const double v = (lg.c_zy.square() * lg.s_x.square() / var_x + lg.s_y.square()).item<double>();
  EXPECT_NEAR(slope, a, 0.02 * std::max(1.0, std::abs(a)));
  EXPECT_NEAR(residual, v, 0.02 * v);
}

}  // namespace
}  // namespace septa::nn::vba
