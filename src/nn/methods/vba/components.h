// The three components of variational backdoor adjustment and the confounded baseline, each a
// separately trainable libtorch module:
//   p(z)        Prior: a diagonal Gaussian / independent Bernoulli (exact log-density) or a VAE
//               whose log-likelihood is an IWAE bound (Gaussian or Bernoulli observation model);
//   p(y | x, z) Conditional on [x, z];
//   q(z | x, y) Conditional on [x, y];
//   p(y | x)    Conditional on x (the confounded baseline).
// Dimension letters: B rows, K importance samples, I inputs, D outputs, H hidden units, L latent.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

#include "nn/checkpoint.h"

namespace septa::nn::vba {

enum class Family { kGaussian, kBernoulli };

// A CPU generator seeded with `seed`.
torch::Generator cpu_generator(uint64_t seed);

// Draws (on the CPU from `generator`, then moved to the device of `like`).
torch::Tensor standard_normal(const std::vector<int64_t>& shape, const torch::Tensor& like,
                              torch::Generator generator);
torch::Tensor uniform(const std::vector<int64_t>& shape, const torch::Tensor& like,
                      torch::Generator generator);

struct ConditionalSpec {
  int64_t inputs = 0;   // I
  int64_t outputs = 0;  // D
  int64_t hidden = 0;   // H; 0: linear (Gaussian: mean = W in + b with a free log-std per output)
  Family family = Family::kGaussian;
  int64_t latent = 0;   // L; > 0: a conditional VAE (below)
  int64_t iwae_k = 10;  // K of the conditional VAE's IWAE bound
  // "inputs=..;outputs=..;hidden=..;family=gaussian", then ";latent=..;iwae_k=.." when L > 0
  std::string text() const;
  static ConditionalSpec parse(const std::string& text);  // ModelError when malformed
};

// p(out | in): Gaussian N(mean(in), diag exp(2 log_std(in))) or Bernoulli(sigmoid(logits(in))).
// The network: Linear(I, D') (hidden = 0) or Linear(I, H) ReLU Linear(H, H) ReLU Linear(H, D'),
// D' = 2D for a Gaussian MLP (mean, log-std), D otherwise. It sees standardised inputs and, for
// a Gaussian, predicts standardised outputs (fixed affine maps set from the training data, saved
// as buffers): with u = (in - a) / s and the net's (m, l),
//   mean = c + t m,  log_std = l + log t   (a change of variables: the density stays exact).
//
// With latent L > 0 it is a conditional VAE (Sohn, Lee, Yan 2015) whose pixels are dependent
// given `in` through u:
//   p(out | in) = E_{u ~ N(0, I_L)} p(out | in, u),  decoder p(out | [in, u]) as above (latent 0);
//   posterior e(u | [in, out]), Gaussian; log p(out | in) is the IWAE bound (Burda et al. 2016)
//   log (1/K) sum_k p(out | in, u_k) N(u_k; 0, I) / e(u_k | in, out),  u_k ~ e(. | in, out).
struct ConditionalImpl : torch::nn::Module {
  explicit ConditionalImpl(const ConditionalSpec& spec);
  // Parameters for in [..][I]: Gaussian (mean, log_std), Bernoulli (logits, undefined), [..][D].
  // Latent 0 only (InternalError otherwise).
  std::pair<torch::Tensor, torch::Tensor> params(const torch::Tensor& in);
  // log p(out | in) summed over D: out [..][D], in [..][I] -> [..]. Exact for latent 0; for a
  // conditional VAE the IWAE bound with spec.iwae_k draws from `generator` (required then).
  torch::Tensor log_prob(const torch::Tensor& out, const torch::Tensor& in,
                         torch::Generator generator = torch::Generator());
  // One draw per row of in [..][I] -> [..][D]; differentiable in the parameters: Gaussian by
  // reparameterisation (mean + std * eps), Bernoulli straight-through (hard 0/1 forward,
  // gradient of the probability backward). A conditional VAE draws u ~ N(0, I) first.
  torch::Tensor sample(const torch::Tensor& in, torch::Generator generator);
  // Sets a, s from in [N][I] and (Gaussian only) c, t from out [N][D] (each may be undefined):
  // column means and standard deviations (1 where a column is nearly constant).
  void standardise(const torch::Tensor& in, const torch::Tensor& out);

  ConditionalSpec spec;
  torch::nn::Sequential net{nullptr};               // latent 0
  std::shared_ptr<ConditionalImpl> decoder;          // latent > 0: p(out | [in, u])
  std::shared_ptr<ConditionalImpl> posterior;        // latent > 0: e(u | [in, out]), Gaussian
  torch::Tensor log_std;  // [D] linear Gaussian only
  torch::Tensor in_shift, in_scale;    // [I] a, s (buffers)
  torch::Tensor out_shift, out_scale;  // [D] c, t (buffers)
};
TORCH_MODULE(Conditional);

struct PriorSpec {
  int64_t dims = 0;    // D of z
  int64_t latent = 0;  // L; 0: diagonal Gaussian / independent Bernoulli with exact density
  int64_t hidden = 0;  // H of the VAE's encoder and decoder (0: linear)
  Family family = Family::kGaussian;  // observation model of z
  int64_t iwae_k = 10;  // K of the IWAE bound of log p(z)
  std::string text() const;
  static PriorSpec parse(const std::string& text);
};

// p(z). VAE: h ~ N(0, I_L), z ~ decoder(h); encoder e(h | z);
//   log p(z) >= log (1/K) sum_k p(z | h_k) N(h_k; 0, I) / e(h_k | z),  h_k ~ e(. | z)
// (Burda, Grosse, Salakhutdinov 2016), differentiable in z and in all parameters.
struct PriorImpl : torch::nn::Module {
  explicit PriorImpl(const PriorSpec& spec);
  // log p(z) (exact, or the IWAE bound with spec.iwae_k samples): z [..][D] -> [..].
  torch::Tensor log_prob(const torch::Tensor& z, torch::Generator generator);
  // n draws [n][D] (Bernoulli draws are 0/1), no gradient.
  torch::Tensor sample(int64_t n, torch::Generator generator);
  // From data z [N][D]: the diagonal Gaussian's maximum-likelihood mean and std (the Bernoulli's
  // logits of the column means), or the VAE's standardisation of z.
  void standardise(const torch::Tensor& z);

  PriorSpec spec;
  torch::Tensor location;  // [D] Gaussian mean or Bernoulli logits (latent = 0)
  torch::Tensor log_std;   // [D] Gaussian (latent = 0)
  Conditional encoder{nullptr};  // e(h | z), Gaussian
  Conditional decoder{nullptr};  // p(z | h), spec.family
};
TORCH_MODULE(Prior);

// Checkpoint kind of a component file; its metadata names the component and its spec.
inline constexpr const char* kComponentKind = "vba-component";

void save_conditional(const std::string& path, const std::string& name, Conditional& module,
                      const Metadata& metadata);
Conditional load_conditional(const std::string& path, const std::string& name);
void save_prior(const std::string& path, const std::string& name, Prior& module,
                const Metadata& metadata);
Prior load_prior(const std::string& path, const std::string& name);

// Copies every parameter and buffer of `from` into `to` (same architecture).
void copy_weights(torch::nn::Module& from, torch::nn::Module& to);

}  // namespace septa::nn::vba
