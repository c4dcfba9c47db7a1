// VBA training (docs/vba.md):
//   stage 1: p(z), p(y | x, z), q(z | x, y) and the baseline p(y | x) each fitted separately by
//            maximum likelihood on the observational triples, each with its own Adam optimiser,
//            through the shared loop (nn/loop.h); any of them may run in its own process;
//   stage 2: only q fine-tuned on the K-sample bound (model.h), p(z) and p(y | x, z) frozen.
//   --joint 1: stage 2 updates all three on the bound instead: the documented failure mode
//            (nothing ties p(y | x, z) to z any more, so the model drifts to the confounded p(y | x)).
#pragma once

#include <string>
#include <vector>

#include "nn/loop.h"
#include "nn/methods/vba/linear_gaussian.h"
#include "nn/options.h"

namespace septa::nn::vba {

struct TrainOptions {
  int epochs = 5;                 // stage 1, per component
  int finetune_epochs = 2;        // stage 2
  int64_t batch = 64;
  double lr = 1e-2;               // stage 1 Adam
  double finetune_lr = 1e-2;      // stage 2 Adam
  int64_t k_train = 5;            // K of the bound in stage 2
  int64_t hidden = 0;             // H of p(y|x,z), q(z|x,y), p(y|x); 0: linear
  int64_t prior_latent = 0;       // L of the VAE p(z); 0: diagonal Gaussian / Bernoulli
  int64_t prior_hidden = 0;       // H of the VAE
  int64_t iwae_k = 10;            // K of the VAE's IWAE bound (and of a conditional VAE's)
  int64_t conditional_latent = 0; // L of a conditional-VAE baseline p(y|x); 0: factorised network
  int64_t outcome_latent = 0;     // L of a conditional-VAE p(y|x,z); 0: factorised network
  bool bernoulli_y = false;       // y binary: Bernoulli p(y|x,z), p(y|x)
  bool bernoulli_z = false;       // z binary: Bernoulli p(z) observation model and q(z|x,y)
  bool joint = false;             // stage 2 on all three components (failure mode)
  uint64_t seed = 1;
};

// The method's option table (registered as "vba") and its parsed values.
std::vector<OptionSpec> option_table();
TrainOptions train_options(const Options& options);

// Component names, their files (DIR/<name>.safetensors) and build order (the seed of component
// i is seed + i, so each can be built alone in its own process).
inline const std::vector<std::string> kStage1 = {"prior", "outcome", "encoder", "conditional"};
inline constexpr const char* kFinetuned = "encoder_finetuned";  // stage 2's q
inline const std::vector<std::string> kJoint = {"joint_prior", "joint_outcome", "joint_encoder"};

// Freshly initialised components for x [X], y [Y], z [Z] features, float32 on `device`.
Model build_model(const TrainOptions& options, int64_t x_features, int64_t y_features,
                  int64_t z_features, const torch::Device& device);

// Stage 1 for one component of kStage1: maximum likelihood,
//   prior: -log p(z),  outcome: -log p(y | [x, z]),  encoder: -log q(z | [x, y]),
//   conditional: -log p(y | x), averaged over the batch, after fixing the component's
// standardisation from `data` (components.h).
StageOutcome fit_component(Model& model, const std::string& name, const Triples& data,
                           const TrainOptions& options, const RunContext& ctx);

// Stage 2: loss = -mean_b log (1/K) sum_k w_bk (model.h). Only q is updated unless
// options.joint; p(z) and p(y|x,z) have requires_grad off for the stage's duration.
StageOutcome finetune(Model& model, const Triples& data, const TrainOptions& options,
                      const RunContext& ctx);

// The context of a VBA run (fit, the benches): torch's intra-op `threads` set, `device`
// resolved ("auto" | "cpu" | "cuda"), progress reported to `progress`, the run's metadata
// taken from `options`.
RunContext run_context(const Options& options, const std::string& device, int threads,
                       const ProgressCallback& progress);

}  // namespace septa::nn::vba
