// The linear-Gaussian protocol of septa/nn/vba.h (bench_linear_gaussian): every estimator's mean
// absolute error of log p(y | do(x)) against the closed form, in and out of distribution.
#include <chrono>

#include "nn/guarded.h"
#include "nn/methods/vba/baselines.h"
#include "nn/methods/vba/training.h"
#include "nn/registry.h"
#include "septa/nn/vba.h"

namespace septa::nn::vba {
namespace {

Triples as_float(const Triples& t, const torch::Device& device) {
  return {t.x.to(torch::kFloat32).to(device), t.y.to(torch::kFloat32).to(device),
          t.z.to(torch::kFloat32).to(device)};
}

double mae(const torch::Tensor& estimate, const torch::Tensor& truth) {
  return (estimate.to(torch::kCPU).to(torch::kFloat64) - truth).abs().mean().item<double>();
}

// A model sharing p(z), p(y|x,z), p(y|x) of `from` with a copy of its encoder.
Model with_encoder_copy(Model& from, const TrainOptions& o, const Triples& data, const torch::Device& device) {
  Model copy = build_model(o, data.x.size(1), data.y.size(1), data.z.size(1), device);
  copy_weights(*from.encoder, *copy.encoder);
  copy.prior = from.prior;
  copy.outcome = from.outcome;
  copy.conditional = from.conditional;
  return copy;
}

}  // namespace

BenchReport bench_linear_gaussian(const BenchConfig& config, const ProgressCallback& progress) {
  return guarded([&] {
    const MethodEntry& entry = find_method("vba");
    const Options options(entry.info, config.options);
    const TrainOptions o = train_options(options);
    if (config.dims < 1 || config.n < 1 || config.test_n < 1 || config.k < 1)
      throw OptionError("vba bench: --dims, --n, --test-n and --k must be >= 1");
    const RunContext ctx = run_context(options, config.device, config.threads, progress);
    torch::Generator generator = cpu_generator(config.data_seed);
    const LinearGaussian lg = LinearGaussian::draw(config.dims, generator);
    const Triples train = as_float(lg.generate(config.n, generator), ctx.device);
    const Triples test[2] = {as_float(lg.generate(config.test_n, generator, false), ctx.device),
                             as_float(lg.generate(config.test_n, generator, true), ctx.device)};
    torch::Tensor truth[2];
    for (int i = 0; i < 2; ++i) truth[i] = lg.log_p_do(test[i].y.to(torch::kCPU), test[i].x.to(torch::kCPU));

    BenchReport report;
    Model model = build_model(o, config.dims, config.dims, config.dims, ctx.device);
    auto run = [&](const StageOutcome& outcome) {
      report.train_seconds += outcome.seconds;
      report.cancelled = report.cancelled || (outcome.stopped && !outcome.complete);
      return !report.cancelled;
    };
    for (const auto& name : kStage1)
      if (!run(fit_component(model, name, train, o, ctx))) return report;
    Model separate = with_encoder_copy(model, o, train, ctx.device);
    Model joint{nullptr, nullptr, nullptr, nullptr};
    if (config.joint) {
      joint = build_model(o, config.dims, config.dims, config.dims, ctx.device);
      copy_weights(*model.prior, *joint.prior);
      copy_weights(*model.outcome, *joint.outcome);
      copy_weights(*model.encoder, *joint.encoder);
    }
    if (!run(finetune(model, train, o, ctx))) return report;
    if (config.joint) {
      TrainOptions jo = o;
      jo.joint = true;
      if (!run(finetune(joint, train, jo, ctx))) return report;
    }

    const auto start = std::chrono::steady_clock::now();
    auto add = [&](const std::string& name, const std::function<Estimate(const Triples&)>& estimate,
                   bool importance) {
      BenchRow row;
      row.estimator = name;
      for (int i = 0; i < 2; ++i) {
        const Estimate e = estimate(test[i]);
        (i == 0 ? row.mae : row.mae_ood) = mae(e.log_p, truth[i]);
        if (i == 0 && importance) row.mean_ess = e.ess.mean().item<double>();
      }
      report.rows.push_back(row);
    };
    torch::Generator eval = cpu_generator(config.data_seed * 7919 + 1);
    auto plain = [](const torch::Tensor& log_p) { return Estimate{log_p, torch::Tensor(), torch::Tensor()}; };
    add("vba fine-tuned", [&](const Triples& t) { return log_p_do(model, t.y, t.x, config.k, eval); }, true);
    add("vba separate", [&](const Triples& t) { return log_p_do(separate, t.y, t.x, config.k, eval); }, true);
    if (config.joint)
      add("vba joint (failure mode)", [&](const Triples& t) { return log_p_do(joint, t.y, t.x, config.k, eval); }, true);
    add("naive MC", [&](const Triples& t) { return naive_log_p_do(model, t.y, t.x, config.k, eval); }, true);
    add("conditional p(y|x) fitted",
        [&](const Triples& t) { return plain(conditional_log_p(model, t.y, t.x, eval)); }, false);
    add("conditional p(y|x) exact",
        [&](const Triples& t) { return plain(lg.log_p_conditional(t.y.to(torch::kCPU), t.x.to(torch::kCPU))); },
        false);
    const Triples train_cpu{train.x.to(torch::kCPU), train.y.to(torch::kCPU), train.z.to(torch::kCPU)};
    const GaussianAdjustment regression = regression_adjustment(train_cpu);
    add("regression adjustment",
        [&](const Triples& t) { return plain(regression.log_prob(t.y.to(torch::kCPU), t.x.to(torch::kCPU))); },
        false);
    double ess_fraction = 0.0;
    const GaussianAdjustment ipw = inverse_propensity_weighting(train_cpu, &ess_fraction);
    add("IPW (weights ESS " + std::to_string(static_cast<int>(100 * ess_fraction + 0.5)) + "% of N)",
        [&](const Triples& t) { return plain(ipw.log_prob(t.y.to(torch::kCPU), t.x.to(torch::kCPU))); },
        false);
    report.eval_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  });
}

}  // namespace septa::nn::vba
