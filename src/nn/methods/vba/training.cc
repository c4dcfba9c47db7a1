// Stage 1 (separate maximum likelihood) and stage 2 (bound fine-tuning) of VBA.
#include "nn/methods/vba/training.h"

#include "nn/methods/vba/densities.h"
#include "nn/registry.h"
#include "septa/error.h"
#include "septa/nn/nn.h"

namespace septa::nn::vba {
namespace {

struct Frozen {
  // Turns requires_grad off on `modules` and back on when destroyed.
  explicit Frozen(std::vector<torch::nn::Module*> modules) : modules_(std::move(modules)) {
    for (auto* m : modules_)
      for (auto& p : m->parameters()) p.set_requires_grad(false);
  }
  ~Frozen() {
    for (auto* m : modules_)
      for (auto& p : m->parameters()) p.set_requires_grad(true);
  }
  std::vector<torch::nn::Module*> modules_;
};

Triples rows(const Triples& data, const torch::Tensor& batch) {
  return {data.x.index_select(0, batch), data.y.index_select(0, batch),
          data.z.index_select(0, batch)};
}

int component_index(const std::string& name) {
  for (size_t i = 0; i < kStage1.size(); ++i)
    if (kStage1[i] == name) return static_cast<int>(i);
  throw OptionError("unknown VBA component '" + name + "' (expected prior, outcome, encoder or conditional)");
}

}  // namespace

std::vector<OptionSpec> option_table() {
  return {
      epochs_option(5, "stage-1 epochs of each component"),
      {"finetune-epochs", OptionType::kInteger, "2", 0, 100000, false,
       "stage-2 epochs of q on the bound (0: no fine-tuning)"},
      {"batch", OptionType::kInteger, "64", 1, 1e9, false, "mini-batch size"},
      learning_rate_option("lr", "0.01", "Adam learning rate of stage 1"),
      learning_rate_option("finetune-lr", "0.01", "Adam learning rate of stage 2"),
      {"k-train", OptionType::kInteger, "5", 1, 10000, false, "importance samples K of the bound in stage 2"},
      {"hidden", OptionType::kInteger, "0", 0, 100000, false,
       "hidden units of p(y|x,z), q(z|x,y), p(y|x) (0: linear)"},
      {"prior-latent", OptionType::kInteger, "0", 0, 100000, false,
       "latent size of the VAE p(z) (0: diagonal Gaussian / Bernoulli p(z))"},
      {"prior-hidden", OptionType::kInteger, "0", 0, 100000, false, "hidden units of the VAE (0: linear)"},
      {"iwae-k", OptionType::kInteger, "10", 1, 10000, false, "importance samples of the VAE's IWAE bound"},
      {"conditional-latent", OptionType::kInteger, "0", 0, 100000, false,
       "latent size of a conditional-VAE baseline p(y|x) (0: a factorised network)"},
      {"outcome-latent", OptionType::kInteger, "0", 0, 100000, false,
       "latent size of a conditional-VAE p(y|x,z) (0: a factorised network)"},
      {"bernoulli-y", OptionType::kInteger, "0", 0, 1, false, "1: y is binary (Bernoulli models)"},
      {"bernoulli-z", OptionType::kInteger, "0", 0, 1, false,
       "1: z is binary (Bernoulli p(z) observations, straight-through q)"},
      {"joint", OptionType::kInteger, "0", 0, 1, false,
       "1: stage 2 trains all three components on the bound (the known failure mode)"},
      seed_option(),
  };
}

TrainOptions train_options(const Options& o) {
  TrainOptions t;
  t.epochs = static_cast<int>(o.integer("epochs"));
  t.finetune_epochs = static_cast<int>(o.integer("finetune-epochs"));
  t.batch = o.integer("batch");
  t.lr = o.real("lr");
  t.finetune_lr = o.real("finetune-lr");
  t.k_train = o.integer("k-train");
  t.hidden = o.integer("hidden");
  t.prior_latent = o.integer("prior-latent");
  t.prior_hidden = o.integer("prior-hidden");
  t.iwae_k = o.integer("iwae-k");
  t.conditional_latent = o.integer("conditional-latent");
  t.outcome_latent = o.integer("outcome-latent");
  t.bernoulli_y = o.integer("bernoulli-y") == 1;
  t.bernoulli_z = o.integer("bernoulli-z") == 1;
  t.joint = o.integer("joint") == 1;
  t.seed = o.seed();
  return t;
}

Model build_model(const TrainOptions& o, int64_t x_features, int64_t y_features,
                  int64_t z_features, const torch::Device& device) {
  const Family fy = o.bernoulli_y ? Family::kBernoulli : Family::kGaussian;
  const Family fz = o.bernoulli_z ? Family::kBernoulli : Family::kGaussian;
  Model model;
  seeded_build(o.seed + 0, [&] {
    model.prior = Prior(PriorSpec{z_features, o.prior_latent, o.prior_hidden, fz, o.iwae_k});
  });
  seeded_build(o.seed + 1, [&] {
    model.outcome = Conditional(ConditionalSpec{x_features + z_features, y_features, o.hidden, fy,
                                                o.outcome_latent, o.iwae_k});
  });
  seeded_build(o.seed + 2, [&] {
    model.encoder = Conditional(ConditionalSpec{x_features + y_features, z_features, o.hidden, fz});
  });
  seeded_build(o.seed + 3, [&] {
    model.conditional = Conditional(
        ConditionalSpec{x_features, y_features, o.hidden, fy, o.conditional_latent, o.iwae_k});
  });
  model.prior->to(device);
  model.outcome->to(device);
  model.encoder->to(device);
  model.conditional->to(device);
  return model;
}

StageOutcome fit_component(Model& model, const std::string& name, const Triples& data,
                           const TrainOptions& o, const RunContext& ctx) {
  const int index = component_index(name);
  torch::nn::Module* module = index == 0   ? static_cast<torch::nn::Module*>(model.prior.get())
                              : index == 1 ? static_cast<torch::nn::Module*>(model.outcome.get())
                              : index == 2 ? static_cast<torch::nn::Module*>(model.encoder.get())
                                           : static_cast<torch::nn::Module*>(model.conditional.get());
  // Fixed standardisation of each component's inputs and Gaussian outputs (components.h).
  if (index == 0) model.prior->standardise(data.z);
  else if (index == 1) model.outcome->standardise(torch::cat({data.x, data.z}, 1), data.y);
  else if (index == 2) model.encoder->standardise(torch::cat({data.x, data.y}, 1), data.z);
  else model.conditional->standardise(data.x, data.y);
  torch::optim::Adam optimizer(module->parameters(), torch::optim::AdamOptions(o.lr));
  Stage stage;
  stage.name = name;
  stage.epochs = o.epochs;
  stage.batch_size = o.batch;
  stage.examples = data.x.size(0);
  // Each component has its own data order and noise, independent of the others' runs.
  stage.generator = cpu_generator(o.seed * 1000003 + 17 * static_cast<uint64_t>(index + 1));
  stage.step = [&, index](const torch::Tensor& batch) {
    const Triples b = rows(data, batch);
    torch::Tensor log_p;  // [B]
    if (index == 0) log_p = model.prior->log_prob(b.z, stage.generator);
    else if (index == 1)
      log_p = model.outcome->log_prob(b.y, torch::cat({b.x, b.z}, /*dim=*/1), stage.generator);
    else if (index == 2) log_p = model.encoder->log_prob(b.z, torch::cat({b.x, b.y}, /*dim=*/1));
    else log_p = model.conditional->log_prob(b.y, b.x, stage.generator);
    const torch::Tensor loss = -log_p.mean();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    return std::vector<double>{loss.item<double>()};
  };
  stage.loss_names = {"nll"};
  stage.modules = {module};
  stage.optimizers = {&optimizer};
  return run_stage(stage, ctx);
}

StageOutcome finetune(Model& model, const Triples& data, const TrainOptions& o,
                      const RunContext& ctx) {
  std::vector<torch::nn::Module*> trained = {model.encoder.get()};
  std::vector<torch::nn::Module*> frozen = {model.prior.get(), model.outcome.get()};
  if (o.joint) {
    trained = {model.prior.get(), model.outcome.get(), model.encoder.get()};
    frozen.clear();
  }
  const Frozen guard(frozen);
  std::vector<std::unique_ptr<torch::optim::Adam>> optimizers;
  for (auto* m : trained)
    optimizers.push_back(std::make_unique<torch::optim::Adam>(m->parameters(),
                                                              torch::optim::AdamOptions(o.finetune_lr)));
  Stage stage;
  stage.name = o.joint ? "joint" : "finetune";
  stage.epochs = o.finetune_epochs;
  stage.batch_size = o.batch;
  stage.examples = data.x.size(0);
  stage.generator = cpu_generator(o.seed * 1000003 + 101);
  stage.step = [&](const torch::Tensor& batch) {
    const Triples b = rows(data, batch);
    const torch::Tensor bound = log_mean_exp(vba_log_weights(model, b.y, b.x, o.k_train, stage.generator));
    const torch::Tensor loss = -bound.mean();
    for (auto& opt : optimizers) opt->zero_grad();
    loss.backward();
    for (auto& opt : optimizers) opt->step();
    return std::vector<double>{loss.item<double>()};
  };
  stage.loss_names = {"negative bound"};
  stage.modules = trained;
  for (auto& opt : optimizers) stage.optimizers.push_back(opt.get());
  if (stage.epochs == 0) return StageOutcome{false, true, {}, 0.0};
  return run_stage(stage, ctx);
}

RunContext run_context(const Options& options, const std::string& device, int threads,
                       const ProgressCallback& progress) {
  set_threads(threads);
  RunContext ctx;
  ctx.device = torch_device(device);
  ctx.progress = progress;
  ctx.metadata = run_metadata(options);
  return ctx;
}

}  // namespace septa::nn::vba
