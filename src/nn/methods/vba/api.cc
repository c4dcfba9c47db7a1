// septa/nn/vba.h: fit, query, sample and generate on model directories and .npy arrays.
#include <fstream>

#include "nn/guarded.h"
#include "nn/methods/vba/composite.h"
#include "nn/methods/vba/data.h"
#include "nn/methods/vba/training.h"
#include "nn/registry.h"
#include "septa/nn/vba.h"

namespace septa::nn::vba {
namespace {

std::string file(const std::string& dir, const std::string& name) {
  return dir + "/" + name + ".safetensors";
}

bool exists(const std::string& path) { return std::ifstream(path).good(); }

Triples limited(const Triples& t, int64_t limit, const torch::Device& device) {
  const int64_t n = limit > 0 ? std::min(limit, t.x.size(0)) : t.x.size(0);
  return {t.x.narrow(0, 0, n).to(device), t.y.narrow(0, 0, n).to(device),
          t.z.narrow(0, 0, n).to(device)};
}

void check_features(const Model& model, int64_t x_features, int64_t y_features, const std::string& data) {
  const ConditionalSpec& spec = (model.outcome.is_empty() ? model.conditional : model.outcome)->spec;
  const int64_t x_expected = !model.outcome.is_empty() ? spec.inputs - model.prior->spec.dims : spec.inputs;
  if (x_features != x_expected || y_features != spec.outputs)
    throw FormatError(data + ": x has " + std::to_string(x_features) + " and y " +
                      std::to_string(y_features) + " features; the model was fitted on " +
                      std::to_string(x_expected) + " and " + std::to_string(spec.outputs));
}

// The components an estimator needs, from `dir`, on `device`.
Model load_model(const std::string& dir, const std::string& estimator, const torch::Device& device) {
  Model m;
  if (estimator == "conditional") {
    m.conditional = load_conditional(file(dir, "conditional"), "conditional");
  } else if (estimator == "joint") {
    m.prior = load_prior(file(dir, kJoint[0]), kJoint[0]);
    m.outcome = load_conditional(file(dir, kJoint[1]), kJoint[1]);
    m.encoder = load_conditional(file(dir, kJoint[2]), kJoint[2]);
  } else if (estimator == "vba" || estimator == "separate" || estimator == "naive") {
    m.prior = load_prior(file(dir, "prior"), "prior");
    m.outcome = load_conditional(file(dir, "outcome"), "outcome");
    if (estimator == "vba") {
      if (!exists(file(dir, kFinetuned)))
        throw IoError(file(dir, kFinetuned) + ": no fine-tuned encoder (run septa nn vba fit "
                      "--part finetune, or query --estimator separate)");
      m.encoder = load_conditional(file(dir, kFinetuned), kFinetuned);
    } else if (estimator == "separate") {
      m.encoder = load_conditional(file(dir, "encoder"), "encoder");
    }
  } else {
    throw OptionError("--estimator expects vba, separate, joint, naive or conditional, got '" +
                      estimator + "'");
  }
  if (!m.prior.is_empty()) m.prior->to(device);
  if (!m.outcome.is_empty()) m.outcome->to(device);
  if (!m.encoder.is_empty()) m.encoder->to(device);
  if (!m.conditional.is_empty()) m.conditional->to(device);
  return m;
}

void save_all(Model& model, const std::vector<std::string>& names, const std::string& dir,
              const Metadata& metadata) {
  for (const auto& name : names) {
    if (name == "prior" || name == kJoint[0]) save_prior(file(dir, name), name, model.prior, metadata);
    else if (name == "outcome" || name == kJoint[1]) save_conditional(file(dir, name), name, model.outcome, metadata);
    else if (name == "encoder" || name == kJoint[2] || name == kFinetuned)
      save_conditional(file(dir, name), name, model.encoder, metadata);
    else save_conditional(file(dir, name), name, model.conditional, metadata);
  }
}

}  // namespace

RunResult fit(const FitConfig& config, const ProgressCallback& progress) {
  return guarded([&] {
    const MethodEntry& entry = find_method("vba");
    const Options options(entry.info, config.options);
    const TrainOptions o = train_options(options);
    if (config.dir.empty()) throw OptionError("vba fit needs --dir DIR (the model directory)");
    const bool all = config.part.empty();
    const bool known = all || config.part == "finetune" ||
                       std::find(kStage1.begin(), kStage1.end(), config.part) != kStage1.end();
    if (!known)
      throw OptionError("--part expects prior, outcome, encoder, conditional or finetune, got '" +
                        config.part + "'");
    RunContext ctx = run_context(options, config.device, config.threads, progress);
    const Triples data = limited(read_triples(config.data), config.limit, ctx.device);
    make_dir(config.dir);
    ctx.state_dir = config.dir;
    ctx.resume = config.resume;
    Model model = build_model(o, data.x.size(1), data.y.size(1), data.z.size(1), ctx.device);
    RunResult result;
    result.method = "vba";
    result.device = ctx.device.is_cuda() ? "cuda" : "cpu";
    auto record = [&](const std::string& name, const StageOutcome& outcome) {
      result.seconds += outcome.seconds;
      result.parts.push_back({name, outcome.metrics});
      result.cancelled = outcome.stopped && !outcome.complete;
      return !result.cancelled;
    };
    for (const auto& name : kStage1) {
      if (!all && config.part != name) continue;
      if (!record(name, fit_component(model, name, data, o, ctx))) return result;
      save_all(model, {name}, config.dir, ctx.metadata);
    }
    if ((all || config.part == "finetune") && o.finetune_epochs > 0) {
      if (!all) {
        Model saved = load_model(config.dir, "separate", ctx.device);
        check_features(saved, data.x.size(1), data.y.size(1), config.data);
        if (saved.encoder->spec.inputs != data.x.size(1) + data.y.size(1))
          throw FormatError(config.data + ": z does not match the saved encoder");
        model.prior = saved.prior;
        model.outcome = saved.outcome;
        model.encoder = saved.encoder;
      }
      const std::string name = o.joint ? "joint" : "finetune";
      if (!record(name, finetune(model, data, o, ctx))) return result;
      save_all(model, o.joint ? kJoint : std::vector<std::string>{kFinetuned}, config.dir, ctx.metadata);
    }
    return result;
  });
}

QueryResult query(const QueryConfig& config) {
  return guarded([&] {
    if (config.k < 1) throw OptionError("--k must be >= 1, got " + std::to_string(config.k));
    const torch::Device device = torch_device(config.device);
    set_threads(config.threads);
    Model model = load_model(config.dir, config.estimator, device);
    torch::Tensor x = read_matrix(config.data + "/x.npy");
    torch::Tensor y = read_matrix(config.data + "/y.npy");
    if (x.size(0) != y.size(0))
      throw FormatError(config.data + "/y.npy: " + std::to_string(y.size(0)) +
                        " rows, but x.npy has " + std::to_string(x.size(0)));
    const int64_t n = config.limit > 0 ? std::min(config.limit, x.size(0)) : x.size(0);
    x = x.narrow(0, 0, n).to(device);
    y = y.narrow(0, 0, n).to(device);
    check_features(model, x.size(1), y.size(1), config.data);
    torch::Generator generator = cpu_generator(config.seed);
    Estimate e;
    if (config.estimator == "conditional") {
      e.log_p = conditional_log_p(model, y, x, generator);
      e.ess = torch::ones_like(e.log_p);
      e.std_error = torch::zeros_like(e.log_p);
    } else if (config.estimator == "naive") {
      e = naive_log_p_do(model, y, x, config.k, generator);
    } else {
      e = log_p_do(model, y, x, config.k, generator);
    }
    QueryResult result;
    result.rows = n;
    result.mean_log_p = e.log_p.mean().item<double>();
    result.mean_ess = e.ess.mean().item<double>();
    result.mean_std_error = e.std_error.mean().item<double>();
    const std::string truth_path = config.data + "/log_p_do.npy";
    if (exists(truth_path)) {
      const torch::Tensor truth = read_matrix(truth_path).reshape({-1});
      if (truth.size(0) < n)
        throw FormatError(truth_path + ": " + std::to_string(truth.size(0)) + " rows, x.npy has " +
                          std::to_string(n));
      result.has_truth = true;
      result.mean_abs_error = (e.log_p.to(torch::kCPU).to(torch::kFloat64) -
                               truth.narrow(0, 0, n).to(torch::kFloat64)).abs().mean().item<double>();
    }
    if (!config.out.empty())
      write_tensor(config.out, torch::stack({e.log_p, e.ess, e.std_error}, /*dim=*/1));
    return result;
  });
}

void sample(const SampleConfig& config) {
  guarded([&] {
    if (config.n < 1) throw OptionError("--n must be >= 1, got " + std::to_string(config.n));
    if (config.out.empty()) throw OptionError("vba sample needs --out FILE.npy");
    const torch::Device device = torch_device(config.device);
    set_threads(config.threads);
    Model model = load_model(config.dir, config.conditional ? "conditional" : "naive", device);
    const torch::Tensor x = read_matrix(config.x).to(device);
    check_features(model, x.size(1), !model.outcome.is_empty() ? model.outcome->spec.outputs
                                                   : model.conditional->spec.outputs, config.x);
    torch::Generator generator = cpu_generator(config.seed);
    std::vector<torch::Tensor> draws;
    for (int64_t r = 0; r < x.size(0); ++r)
      draws.push_back(config.conditional ? sample_conditional(model, x[r], config.n, generator)
                                         : sample_do(model, x[r], config.n, generator));
    write_tensor(config.out, torch::cat(draws, 0));
    return 0;
  });
}

void generate(const GenerateConfig& config) {
  guarded([&] {
    if (config.out.empty()) throw OptionError("vba generate needs --out DIR");
    if (config.n < 1 || config.test_n < 1) throw OptionError("--n and --test-n must be >= 1");
    if (config.kind == "fashion-composite") {
      generate_fashion_composite(config);
      return 0;
    }
    if (config.kind != "linear-gaussian")
      throw OptionError("--kind expects linear-gaussian or fashion-composite, got '" + config.kind + "'");
    if (config.dims < 1 || config.dims > 100000) throw OptionError("--dims expects [1, 100000]");
    torch::Generator generator = cpu_generator(config.seed);
    const LinearGaussian lg = LinearGaussian::draw(config.dims, generator);
    make_dir(config.out);
    write_tensor(config.out + "/coefficients.npy",
                 torch::stack({lg.c_zx, lg.c_zy, lg.c_xy, lg.s_x, lg.s_y}), /*float64=*/true);
    write_triples(config.out + "/train", lg.generate(config.n, generator));
    for (const bool ood : {false, true}) {
      const Triples t = lg.generate(config.test_n, generator, ood);
      const std::string dir = config.out + (ood ? "/test_ood" : "/test");
      write_triples(dir, t);
      // Truth of the float32 arrays as written.
      const torch::Tensor x = t.x.to(torch::kFloat32), y = t.y.to(torch::kFloat32);
      write_tensor(dir + "/log_p_do.npy", lg.log_p_do(y, x), /*float64=*/true);
      write_tensor(dir + "/log_p_conditional.npy", lg.log_p_conditional(y, x), /*float64=*/true);
    }
    return 0;
  });
}

}  // namespace septa::nn::vba
