// Scala (Zhang et al., "Slicing Vision Transformer for Flexible Inference", NeurIPS 2024), its
// US-Net baseline and separately trained ViTs, trained through the shared loop.
//
// One Scala step on a batch (x, y), gradients of the four sub-networks accumulated, one AdamW
// step (sandwich rule):
//   widths   l = D, m2, m1 (stable sampling: m1 in the lower, m2 in the upper half), s
//   l        0.5 CE(cls_l, y) + 0.5 CE(dist_l, argmax teacher(x))        (y without a teacher)
//   m2,m1,s  0.5 KL(softmax(g) || softmax(dist_k)) + 0.5 CE(cls_k, y)    (noise calibration)
//            g = dist logits of the next larger active net, detached      (progressive transfer)
//   slices   s and l the front of every matrix, m1 and m2 the tail       (isolated activation)
// --smallest-weight w scales s's loss by w (1: the paper's equal weights). --kd-temperature T
// distils at temperature T: T^2 KL(softmax(g / T) || softmax(dist / T)) (Hinton et al. 2015;
// T = 1 is the paper's). --smallest-ce 1 trains s on the labels alone, as a separately trained
// ViT: 0.5 CE(cls_s, y) + 0.5 CE(dist_s, y).
// During the first warmup-epochs only l is trained. The ablations: no IA (every slice the
// front), no SS (m1 < m2 uniform over the interior widths), no PKT (g = dist_l for every net),
// no NC (0.5 KL(g || cls_k) instead of the CE). US-Net is all four ablations at once: nested
// slices, uniform widths, in-place distillation from the full net, soft targets only.
#include "nn/methods/scala/scala.h"

#include "nn/foreach_adamw.h"
#include "nn/methods/scala/recipe.h"
#include "septa/error.h"

namespace septa::nn {
namespace {

namespace F = torch::nn::functional;

struct Switches {
  bool isolated = true;     // IA
  bool stable = true;       // SS
  bool progressive = true;  // PKT
  bool calibrated = true;   // NC
  double smallest_weight = 1;  // the smallest net's loss weight in the sum of the four
  double temperature = 1;      // of every distillation term
  bool smallest_ce = false;    // s learns the labels on both heads, no distillation
};

// T^2 KL(softmax(target / T) || softmax(logits / T)), batch mean.
torch::Tensor distillation(const torch::Tensor& logits, const torch::Tensor& target, double t) {
  const auto options = F::KLDivFuncOptions().reduction(torch::kBatchMean).log_target(true);
  if (t == 1)
    return F::kl_div(torch::log_softmax(logits, /*dim=*/1), torch::log_softmax(target, /*dim=*/1),
                     options);
  return t * t * F::kl_div(torch::log_softmax(logits / t, /*dim=*/1),
                           torch::log_softmax(target / t, /*dim=*/1), options);
}

torch::Tensor sub_network_loss(const VitOutput& out, const torch::Tensor& guide,
                               const torch::Tensor& labels, bool calibrated, double t) {
  return 0.5 * distillation(out.dist, guide, t) +
         0.5 * (calibrated ? F::cross_entropy(out.cls, labels) : distillation(out.cls, guide, t));
}

std::string accuracy_key(double r) { return "test accuracy r=" + ratio_text(r); }

// The reported widths 0.25, 0.5, 0.75 and 1 where on the grid, and s.
std::vector<int64_t> reported_widths(const WidthGrid& grid) {
  std::vector<int64_t> out = {grid.smallest()};
  for (double r : {0.25, 0.5, 0.75})
    if (grid.on_grid(r) && grid.width_of(r) != grid.smallest()) out.push_back(grid.width_of(r));
  out.push_back(grid.largest());
  return out;
}

double width_accuracy(SlimmableVit& model, int64_t d, const Dataset& test) {
  model.net()->eval();
  return test_accuracy([&](const torch::Tensor& x) {
    return model.net()->forward_slice(x, model.slice(d)).logits();
  }, test);
}

std::vector<OptionSpec> grid_options() {
  return {
      {"s", OptionType::kReal, "0.25", 0, 1, true, "smallest width ratio of the grid"},
      {"eps", OptionType::kReal, "0.0625", 0, 1, true, "grid step (widths s, s + eps, ..., 1)"},
      {"warmup-epochs", OptionType::kInteger, "0", 0, 100000, false,
       "first epochs that train only the full width (the paper's warm-up; 0: sandwich from the start)"},
      {"teacher-epochs", OptionType::kInteger, "0", 0, 100000, false,
       "epochs of the separately trained full-width teacher (0: --epochs); DIR/teacher.safetensors "
       "is used instead when present"},
      {"no-teacher", OptionType::kInteger, "0", 0, 1, false,
       "1: no teacher; the full width's distillation head learns the labels"},
      {"fused-qkv", OptionType::kInteger, "0", 0, 1, false,
       "1: slice q, k, v as one fused [3D][D] matrix to [3d][d], as the official Scala code (the "
       "rows acting as q, k and v shift with the width); 0: each [D][D] matrix to [d][d]"},
      {"width-scale", OptionType::kInteger, "0", 0, 1, false,
       "1: a width d scores attention with its own head_dim, scale (d/heads)^-1/2, as a dense ViT "
       "of width d; 0: the full width's scale at every width (the official code)"},
      {"switchable-norms", OptionType::kInteger, "0", 0, 1, false,
       "1: every grid width below 1 has its own LayerNorm weights and biases (switchable norms); "
       "0: every width slices the shared ones"},
  };
}

RunResult train_slimmable(const RunInputs& in, const std::string& method, const Switches& sw) {
  const Options& o = in.options;
  const Dataset& train = in.data.train;
  const Recipe r = recipe(o, train);
  const WidthGrid grid(r.vit.dim, o.real("s"), o.real("eps"), r.vit.heads);
  if (grid.size() < 4)
    throw OptionError("--s " + ratio_text(grid.s()) + " and --eps " + ratio_text(grid.eps()) +
                      " give " + std::to_string(grid.size()) +
                      " widths; the sandwich rule needs at least 4");
  RunResult result;
  result.method = method;
  set_matmul_precision(r, in.ctx.device);

  // The separately trained full-width teacher (DeiT's hard distillation).
  Vit teacher = nullptr;
  if (o.integer("no-teacher") == 0) {
    Recipe tr = r;
    if (o.integer("teacher-epochs") > 0) tr.epochs = static_cast<int>(o.integer("teacher-epochs"));
    const std::string file = in.dir.empty() ? "" : part_path(in.dir, "teacher");
    DenseRun t = train_dense_vit("teacher", r.vit, tr, r.seed + 7919, in, file, /*reuse=*/true);
    result.seconds += t.outcome.seconds;
    if (!t.loaded && (!t.outcome.complete || t.outcome.stopped)) {
      result.cancelled = true;
      return result;
    }
    // A teacher loaded from its file (a resumed run, or one given) reports no loss.
    result.parts.push_back({"teacher", t.loaded ? Metrics{} : t.outcome.metrics});
    teacher = t.net;
    teacher->eval();
  }

  Vit net = nullptr;
  Stage stage;
  VitConfig config = r.vit;
  config.fused_qkv = o.integer("fused-qkv") != 0;
  config.width_scale = o.integer("width-scale") != 0;
  if (o.integer("switchable-norms") != 0)
    for (const int64_t d : grid.widths())
      if (d != grid.largest()) config.private_norms.push_back(d);
  stage.generator = seeded_build(r.seed, [&] { net = Vit(config); });
  net->to(in.ctx.device);
  SlimmableVit model(net, grid, sw.isolated);
  ForeachAdamW optimizer(net->parameters(),
                         torch::optim::AdamWOptions(r.lr).weight_decay(r.weight_decay));
  const int64_t per_epoch = r.steps_per_epoch(train.size());
  Schedule schedule(r.lr, std::llround(r.lr_warmup_epochs * static_cast<double>(per_epoch)),
                    per_epoch * r.epochs);
  const int64_t warmup_steps = o.integer("warmup-epochs") * per_epoch;
  stage.name = method;
  stage.epochs = r.epochs;
  stage.batch_size = r.batch;
  stage.examples = train.size();
  stage.modules = {net.get(), schedule.get()};
  stage.optimizers = {&optimizer, nullptr};
  stage.loss_names = {"loss full", "loss smallest"};
  const WidthGrid::UniformInt uniform = [&stage](int64_t lo, int64_t hi) {
    return torch::randint(lo, hi + 1, {1}, stage.generator, torch::kInt64).item<int64_t>();
  };
  stage.step = [&](const torch::Tensor& batch) {
    net->train();
    const torch::Tensor x =
        augment(train.inputs.index_select(0, batch), r.vit, r.pad, r.flip, stage.generator);
    const torch::Tensor y = train.labels.index_select(0, batch);
    torch::Tensor dist_labels = y;
    if (teacher) {
      torch::NoGradGuard no_grad;
      dist_labels = teacher->forward(x).logits().argmax(/*dim=*/1);
    }
    optimizer.zero_grad();
    const VitOutput full = net->forward(x);
    const torch::Tensor full_loss = full_width_loss(full, y, dist_labels);
    full_loss.backward();
    torch::Tensor smallest_loss;  // read after the optimiser step: one device sync per step
    if (schedule->step() >= warmup_steps) {
      const auto [m1, m2] = sw.stable ? grid.stable_pair(uniform) : grid.uniform_pair(uniform);
      const torch::Tensor full_guide = full.dist.detach();
      torch::Tensor guide = full_guide;
      for (const int64_t d : {m2, m1, grid.smallest()}) {
        const VitOutput out = net->forward_slice(x, model.slice(d));
        const torch::Tensor loss =
            d == grid.smallest() && sw.smallest_ce
                ? full_width_loss(out, y, y)
                : sub_network_loss(out, sw.progressive ? guide : full_guide, y, sw.calibrated,
                                   sw.temperature);
        if (d == grid.smallest() && sw.smallest_weight != 1) (sw.smallest_weight * loss).backward();
        else loss.backward();
        guide = out.dist.detach();
        if (d == grid.smallest()) smallest_loss = loss.detach();
      }
    }
    schedule->apply(optimizer);
    optimizer.step();
    return std::vector<double>{full_loss.item<double>(),
                               smallest_loss.defined() ? smallest_loss.item<double>() : 0.0};
  };
  stage.evaluate = [&] {
    Metrics m;
    m["test accuracy"] = width_accuracy(model, grid.largest(), in.data.test);
    m[accuracy_key(grid.s())] = width_accuracy(model, grid.smallest(), in.data.test);
    return m;
  };
  const StageOutcome outcome = run_stage(stage, in.ctx);
  result.seconds += outcome.seconds;
  result.cancelled = !outcome.complete;
  if (!outcome.complete) return result;
  for (const int64_t d : reported_widths(grid)) {
    const double acc = width_accuracy(model, d, in.data.test);
    result.metrics[accuracy_key(static_cast<double>(d) / static_cast<double>(grid.full_width()))] = acc;
    if (d == grid.largest()) result.metrics["test accuracy"] = acc;
  }
  result.parts.push_back({"full width", {{"loss", outcome.metrics.at("loss full")}}});
  result.parts.push_back({"smallest width", {{"loss", outcome.metrics.at("loss smallest")}}});
  if (!in.dir.empty()) save_vit(model, in.ctx.metadata, part_path(in.dir, "model"));
  return result;
}

RunResult train_scala(const RunInputs& in) {
  const Options& o = in.options;
  Switches sw;
  sw.isolated = o.integer("no-ia") == 0;
  sw.stable = o.integer("no-ss") == 0;
  sw.progressive = o.integer("no-pkt") == 0;
  sw.calibrated = o.integer("no-nc") == 0;
  sw.smallest_weight = o.real("smallest-weight");
  sw.temperature = o.real("kd-temperature");
  sw.smallest_ce = o.integer("smallest-ce") != 0;
  return train_slimmable(in, "scala", sw);
}

RunResult train_usnet(const RunInputs& in) {
  return train_slimmable(in, "usnet", Switches{false, false, false, false});
}

RunResult train_separate(const RunInputs& in) {
  const Options& o = in.options;
  const Recipe r = recipe(o, in.data.train);
  RunResult result;
  result.method = "vit-separate";
  for (const int64_t k : o.sizes("widths")) {
    const double ratio = static_cast<double>(k) / 16.0;
    VitConfig config = r.vit;
    if ((k * r.vit.dim) % 16 != 0 || (k * r.vit.dim / 16) % r.vit.heads != 0)
      throw OptionError("--widths entry " + std::to_string(k) + ": " + std::to_string(k) +
                        "/16 of --dim " + std::to_string(r.vit.dim) +
                        " is not a whole multiple of --heads " + std::to_string(r.vit.heads));
    config.dim = k * r.vit.dim / 16;
    const std::string name = "vit " + ratio_text(ratio);
    const std::string file = in.dir.empty() ? "" : part_path(in.dir, "vit_" + ratio_text(ratio));
    DenseRun run = train_dense_vit(name, config, r, r.seed + static_cast<uint64_t>(k), in, file,
                                   /*reuse=*/in.ctx.resume);
    result.seconds += run.outcome.seconds;
    if (!run.loaded && !run.outcome.complete) {
      result.cancelled = true;
      return result;
    }
    const bool stop = !run.loaded && run.outcome.stopped;
    run.net->eval();
    const double acc = test_accuracy([&](const torch::Tensor& x) {
      return run.net->forward(x).logits();
    }, in.data.test);
    result.metrics[accuracy_key(ratio)] = acc;
    result.metrics["test accuracy"] = acc;  // the last (widest) listed width
    result.parts.push_back({name, run.loaded ? Metrics{} : Metrics{{"loss", run.outcome.metrics.at("loss")}}});
    if (stop && k != o.sizes("widths").back()) {  // stopped after a width's last epoch
      result.cancelled = true;
      return result;
    }
  }
  return result;
}

}  // namespace

MethodEntry scala_method() {
  MethodEntry entry;
  entry.info.name = "scala";
  entry.info.summary =
      "Scala (Zhang et al. 2024): one slimmable ViT usable at every grid width (sandwich rule, "
      "stable sampling, isolated activation, progressive distillation, noise calibration)";
  entry.info.options = vit_recipe_options(10);
  for (const auto& row : grid_options()) entry.info.options.push_back(row);
  for (const char* name : {"no-ia", "no-pkt", "no-ss", "no-nc"})
    entry.info.options.push_back({name, OptionType::kInteger, "0", 0, 1, false,
                                  std::string("ablation: 1 disables ") +
                                      (name[3] == 'i'   ? "isolated activation"
                                       : name[3] == 'p' ? "progressive knowledge transfer"
                                       : name[3] == 's' ? "stable sampling"
                                                        : "noise calibration")});
  entry.info.options.push_back({"smallest-weight", OptionType::kReal, "1", 0, 16, false,
                                "weight of the smallest net's loss in the sandwich's sum (1: the paper's)"});
  entry.info.options.push_back({"kd-temperature", OptionType::kReal, "1", 0, 100, true,
                                "distillation temperature T: T^2 KL(softmax(g/T) || softmax(z/T)) "
                                "(1: the paper's)"});
  entry.info.options.push_back({"smallest-ce", OptionType::kInteger, "0", 0, 1, false,
                                "1: the smallest net learns the labels on both heads, no distillation"});
  entry.train = train_scala;
  entry.widths = {slimmable_report, slimmable_export};
  return entry;
}

MethodEntry usnet_method() {
  MethodEntry entry;
  entry.info.name = "usnet";
  entry.info.summary =
      "US-Net baseline on the Scala ViT and recipe: sandwich rule, nested slices, in-place "
      "distillation from the full width";
  entry.info.options = vit_recipe_options(10);
  for (const auto& row : grid_options()) entry.info.options.push_back(row);
  entry.train = train_usnet;
  entry.widths = {slimmable_report, slimmable_export};
  return entry;
}

MethodEntry separate_vit_method() {
  MethodEntry entry;
  entry.info.name = "vit-separate";
  entry.info.summary = "baseline: one dense ViT per width, each trained separately (same recipe)";
  entry.info.options = vit_recipe_options(10);
  entry.info.options.push_back({"widths", OptionType::kSizes, "4,8,12,16", 1, 16, false,
                                "widths in sixteenths of --dim (4 = r 0.25)"});
  entry.train = train_separate;
  entry.widths = {separate_report, nullptr};
  return entry;
}

}  // namespace septa::nn
