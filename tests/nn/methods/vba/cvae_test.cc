// The conditional VAE variant of Conditional (components.h): its IWAE log-density against the
// closed form of a linear-Gaussian CVAE and against hand values, its spec and checkpoint round
// trips, its draws, and a short fit that lowers its loss.
#include <gtest/gtest.h>

#include <cmath>

#include "nn/checkpoint.h"
#include "nn/methods/vba/components.h"
#include "nn/methods/vba/densities.h"
#include "nn/test_util.h"
#include "septa/error.h"

namespace septa::nn::vba {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

void set_linear(ConditionalImpl& module, std::vector<double> weight, double bias) {
  torch::NoGradGuard no_grad;
  auto* linear = module.net[0]->as<torch::nn::Linear>();
  linear->weight.copy_(torch::tensor(weight, kDouble).reshape({1, -1}));
  linear->bias.fill_(bias);
}

// y | x, u ~ N(a x + b u + c, s^2), u ~ N(0, 1): p(y | x) = N(a x + c, b^2 + s^2), and the
// posterior u | x, y ~ N(v b (y - a x - c) / s^2, v), v = 1 / (1 + b^2 / s^2), is linear-Gaussian:
// with it as e(u | x, y) every importance weight equals p(y | x) (zero variance).
TEST(ConditionalVae, LinearGaussianWithTheExactPosteriorIsExactForEverySample) {
  testing::setup_torch();
  const double a = 1.5, b = -2.0, c = 0.3, s = 0.7;
  const double v = 1.0 / (1.0 + b * b / (s * s));
  Conditional module(ConditionalSpec{1, 1, 0, Family::kGaussian, /*latent=*/1, /*iwae_k=*/1});
  module->to(torch::kFloat64);
  set_linear(*module->decoder, {a, b}, c);
  set_linear(*module->posterior, {-v * b * a / (s * s), v * b / (s * s)}, -v * b * c / (s * s));
  {
    torch::NoGradGuard no_grad;
    module->decoder->log_std.fill_(std::log(s));
    module->posterior->log_std.fill_(0.5 * std::log(v));
  }
  torch::Generator generator = cpu_generator(4);
  const torch::Tensor x = torch::randn({500, 1}, generator, kDouble) * 2.0;
  const torch::Tensor y = a * x + c + torch::randn({500, 1}, generator, kDouble) * std::sqrt(b * b + s * s) * 1.5;
  const torch::Tensor truth = normal_log_prob(y, a * x + c, torch::full({1}, 0.5 * std::log(b * b + s * s), kDouble));
  EXPECT_LT((module->log_prob(y, x, generator) - truth).abs().max().item<double>(), 1e-9);
  module->spec.iwae_k = 7;
  EXPECT_LT((module->log_prob(y, x, generator) - truth).abs().max().item<double>(), 1e-9);

  // With the prior as the posterior (weights 0, log-std 0) the bound is lower on average and
  // tightens towards the truth as K grows.
  {
    torch::NoGradGuard no_grad;
    set_linear(*module->posterior, {0.0, 0.0}, 0.0);
    module->posterior->log_std.fill_(0.0);
  }
  module->spec.iwae_k = 1;
  const double gap1 = (truth - module->log_prob(y, x, generator)).mean().item<double>();
  module->spec.iwae_k = 2000;
  const double gap2000 = (truth - module->log_prob(y, x, generator)).mean().item<double>();
  EXPECT_GT(gap1, 0.1);
  EXPECT_LT(gap2000, gap1 / 10);
  EXPECT_GT(gap2000, -0.01);
}

// A Bernoulli decoder that ignores u and the prior as the posterior: every importance weight is
// p(y | x), the hand value log sigmoid(0) + log(1 - sigmoid(2)) for y = (1, 0).
TEST(ConditionalVae, BernoulliDecoderThatIgnoresTheLatentAgainstHandValues) {
  testing::setup_torch();
  Conditional module(ConditionalSpec{3, 2, 0, Family::kBernoulli, /*latent=*/4, /*iwae_k=*/5});
  module->to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    auto* linear = module->decoder->net[0]->as<torch::nn::Linear>();
    linear->weight.zero_();
    linear->bias.copy_(torch::tensor({0.0, 2.0}, kDouble));
    for (auto& p : module->posterior->parameters()) p.zero_();
  }
  torch::Generator generator = cpu_generator(8);
  const torch::Tensor x = torch::randn({6, 3}, generator, kDouble);
  const torch::Tensor y = torch::tensor({1.0, 0.0}, kDouble).expand({6, 2});
  const double hand = std::log(0.5) - std::log1p(std::exp(2.0));
  const torch::Tensor log_p = module->log_prob(y, x, generator);
  ASSERT_EQ(log_p.sizes(), torch::IntArrayRef({6}));
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(log_p[i].item<double>(), hand, 1e-12);
  // Leading dimensions are kept: [2][3] rows.
  EXPECT_EQ(module->log_prob(y.reshape({2, 3, 2}), x.reshape({2, 3, 3}), generator).sizes(),
            torch::IntArrayRef({2, 3}));
  EXPECT_THROW(module->log_prob(y, x), InternalError);
  EXPECT_THROW(module->params(x), InternalError);
  // Draws are 0/1 with the decoder's probabilities: the first pixel half the time, the second
  // sigmoid(2) = 0.881 of the time.
  const torch::Tensor draws = module->sample(torch::zeros({4000, 3}, kDouble), generator);
  EXPECT_TRUE(((draws == 0) | (draws == 1)).all().item<bool>());
  EXPECT_NEAR(draws.select(1, 0).mean().item<double>(), 0.5, 0.03);
  EXPECT_NEAR(draws.select(1, 1).mean().item<double>(), 1.0 / (1.0 + std::exp(-2.0)), 0.02);
}

TEST(ConditionalVae, SpecAndCheckpointRoundTrip) {
  testing::setup_torch();
  const ConditionalSpec spec{5, 6, 8, Family::kBernoulli, 3, 4};
  EXPECT_EQ(spec.text(), "inputs=5;outputs=6;hidden=8;family=bernoulli;latent=3;iwae_k=4");
  const ConditionalSpec back = ConditionalSpec::parse(spec.text());
  EXPECT_EQ(back.latent, 3);
  EXPECT_EQ(back.iwae_k, 4);
  // A factorised network's text is unchanged (older checkpoints load as latent 0).
  const ConditionalSpec factorised{5, 6, 8, Family::kBernoulli};
  EXPECT_EQ(factorised.text(), "inputs=5;outputs=6;hidden=8;family=bernoulli");
  EXPECT_EQ(ConditionalSpec::parse("inputs=5;outputs=6;hidden=8;family=bernoulli").latent, 0);
  EXPECT_THROW(ConditionalSpec::parse("inputs=5;outputs=6;hidden=8;family=bernoulli;latent=x;iwae_k=4"),
               ModelError);
  EXPECT_THROW(ConditionalSpec::parse("inputs=5;outputs=6;hidden=8;family=bernoulli;latent=2"), ModelError);
  EXPECT_THROW(ConditionalSpec::parse("inputs=5;outputs=6;hidden=8;family=bernoulli;latent=-1;iwae_k=4"),
               ModelError);

  Conditional module(spec);
  const std::string dir = testing::temp_dir("vba_cvae");
  save_conditional(dir + "/conditional.safetensors", "conditional", module,
                   Metadata{{"septa.method", "vba"}});
  Conditional loaded = load_conditional(dir + "/conditional.safetensors", "conditional");
  EXPECT_EQ(loaded->spec.text(), spec.text());
  torch::Generator g1 = cpu_generator(2), g2 = cpu_generator(2), data = cpu_generator(3);
  const torch::Tensor x = torch::randn({10, 5}, data);
  const torch::Tensor y = (torch::rand({10, 6}, data) < 0.5).to(torch::kFloat32);
  const torch::Tensor a = module->log_prob(y, x, g1), b = loaded->log_prob(y, x, g2);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_TRUE(torch::isfinite(a).all().item<bool>());
  EXPECT_TRUE((a < 0).all().item<bool>());
}

// y = two copies of a fair coin (pixels perfectly dependent given x): a factorised model cannot
// beat 2 log 2 nats, a conditional VAE can approach log 2. A short fit must get below 1.2 nats.
TEST(ConditionalVae, LearnsDependentPixelsAFactorisedModelCannot) {
  testing::setup_torch();
  torch::manual_seed(5);
  Conditional module(ConditionalSpec{1, 2, 16, Family::kBernoulli, /*latent=*/1, /*iwae_k=*/8});
  torch::Generator generator = cpu_generator(6);
  const torch::Tensor coin = (torch::rand({2000, 1}, generator) < 0.5).to(torch::kFloat32);
  const torch::Tensor y = torch::cat({coin, coin}, 1), x = torch::zeros({2000, 1});
  module->standardise(x, y);
  torch::optim::Adam adam(module->parameters(), torch::optim::AdamOptions(1e-2));
  for (int step = 0; step < 400; ++step) {
    const torch::Tensor batch = torch::randint(2000, {100}, generator, torch::kInt64);
    const torch::Tensor loss = -module->log_prob(y.index_select(0, batch), x.index_select(0, batch), generator).mean();
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  torch::NoGradGuard no_grad;
  const double nll = -module->log_prob(y, x, generator).mean().item<double>();
  EXPECT_LT(nll, 1.2);  // factorised optimum: 2 log 2 = 1.386
  EXPECT_GT(nll, std::log(2.0) - 0.05);
}

}  // namespace
}  // namespace septa::nn::vba
