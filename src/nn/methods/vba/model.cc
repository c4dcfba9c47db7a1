// The VBA, naive Monte Carlo and conditional estimators, and the samplers (formulas in model.h).
#include "nn/methods/vba/model.h"

#include "nn/methods/vba/densities.h"
#include "septa/error.h"

namespace septa::nn::vba {
namespace {

constexpr int64_t kChunkSamples = 25600;  // rows x K evaluated at once

// Draws per importance sample of the outcome's log-density: its IWAE K for a conditional VAE.
int64_t outcome_draws(const Model& model) {
  return model.outcome->spec.latent > 0 ? model.outcome->spec.iwae_k : 1;
}

// Runs `rows(first, count)` on chunks of B rows and concatenates the estimates; `k` counts
// every draw a row holds at once (importance samples x the outcome's inner draws).
template <typename Rows>
Estimate chunked(int64_t b, int64_t k, const Rows& rows) {
  std::vector<torch::Tensor> log_p, ess, std_error;
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkSamples / k);
  for (int64_t first = 0; first < b; first += rows_per_chunk) {
    const int64_t count = std::min(rows_per_chunk, b - first);
    const torch::Tensor log_weights = rows(first, count);  // [count][K]
    const WeightStats stats = weight_stats(log_weights);
    log_p.push_back(log_mean_exp(log_weights));
    ess.push_back(stats.ess);
    std_error.push_back(stats.std_error);
  }
  return {torch::cat(log_p), torch::cat(ess), torch::cat(std_error)};
}

void check_rows(const torch::Tensor& y, const torch::Tensor& x, int64_t k) {
  if (y.dim() != 2 || x.dim() != 2 || y.size(0) != x.size(0))
    throw InternalError("VBA estimators take y [B][Y] and x [B][X] with equal B");
  if (k < 1) throw OptionError("K must be >= 1, got " + std::to_string(k));
}

}  // namespace

torch::Tensor vba_log_weights(Model& model, const torch::Tensor& y, const torch::Tensor& x,
                              int64_t k, torch::Generator generator) {
  const int64_t b = y.size(0);
  const torch::Tensor xk = x.unsqueeze(0).expand({k, b, x.size(1)});      // [K][B][X]
  const torch::Tensor yk = y.unsqueeze(0).expand({k, b, y.size(1)});      // [K][B][Y]
  const torch::Tensor q_in = torch::cat({xk, yk}, /*dim=*/-1);            // [K][B][X+Y]
  const torch::Tensor z = model.encoder->sample(q_in, generator);        // [K][B][Z]
  const torch::Tensor log_q = model.encoder->log_prob(z, q_in);          // [K][B]
  const torch::Tensor log_z = model.prior->log_prob(z, generator);       // [K][B]
  const torch::Tensor log_y = model.outcome->log_prob(yk, torch::cat({xk, z}, /*dim=*/-1), generator);
  return (log_z + log_y - log_q).transpose(0, 1);                        // [B][K]
}

Estimate log_p_do(Model& model, const torch::Tensor& y, const torch::Tensor& x, int64_t k,
                  torch::Generator generator) {
  check_rows(y, x, k);
  torch::NoGradGuard no_grad;
  return chunked(y.size(0), k * outcome_draws(model), [&](int64_t first, int64_t count) {
    return vba_log_weights(model, y.narrow(0, first, count), x.narrow(0, first, count), k,
                           generator);
  });
}

Estimate naive_log_p_do(Model& model, const torch::Tensor& y, const torch::Tensor& x, int64_t k,
                        torch::Generator generator) {
  check_rows(y, x, k);
  torch::NoGradGuard no_grad;
  return chunked(y.size(0), k * outcome_draws(model), [&](int64_t first, int64_t count) {
    const torch::Tensor yb = y.narrow(0, first, count).unsqueeze(0).expand({k, count, y.size(1)});
    const torch::Tensor xb = x.narrow(0, first, count).unsqueeze(0).expand({k, count, x.size(1)});
    const torch::Tensor z = model.prior->sample(k * count, generator).to(y.scalar_type())
                                .reshape({k, count, -1});                     // [K][B][Z]
    return model.outcome->log_prob(yb, torch::cat({xb, z}, /*dim=*/-1), generator).transpose(0, 1);
  });
}

torch::Tensor conditional_log_p(Model& model, const torch::Tensor& y, const torch::Tensor& x,
                                torch::Generator generator) {
  if (model.conditional.is_empty()) throw ModelError("the model has no conditional baseline p(y|x)");
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;  // in chunks of rows (a conditional VAE holds K copies)
  const int64_t rows = std::max<int64_t>(1, kChunkSamples / model.conditional->spec.iwae_k);
  for (int64_t first = 0; first < y.size(0); first += rows) {
    const int64_t count = std::min(rows, y.size(0) - first);
    out.push_back(model.conditional->log_prob(y.narrow(0, first, count), x.narrow(0, first, count), generator));
  }
  return out.empty() ? torch::zeros({0}, y.options()) : torch::cat(out);
}

torch::Tensor sample_do(Model& model, const torch::Tensor& x, int64_t n, torch::Generator generator) {
  torch::NoGradGuard no_grad;
  const torch::Tensor z = model.prior->sample(n, generator).to(x.scalar_type());  // [n][Z]
  const torch::Tensor xn = x.reshape({1, -1}).expand({n, x.numel()});
  return model.outcome->sample(torch::cat({xn, z}, /*dim=*/-1), generator);
}

torch::Tensor sample_conditional(Model& model, const torch::Tensor& x, int64_t n,
                                 torch::Generator generator) {
  if (model.conditional.is_empty()) throw ModelError("the model has no conditional baseline p(y|x)");
  torch::NoGradGuard no_grad;
  return model.conditional->sample(x.reshape({1, -1}).expand({n, x.numel()}), generator);
}

}  // namespace septa::nn::vba
