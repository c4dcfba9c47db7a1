// The shared ViT recipe: options, augmentation, schedule, evaluation, dense training.
#include "nn/methods/scala/recipe.h"

#include <cmath>
#include <fstream>

#include "nn/foreach_adamw.h"
#include "septa/error.h"

namespace septa::nn {
namespace {

constexpr int64_t kEvalChunk = 500;
constexpr double kPi = 3.14159265358979323846;

bool exists(const std::string& path) { return std::ifstream(path).good(); }

}  // namespace

std::vector<OptionSpec> vit_recipe_options(int default_epochs) {
  return {
      {"dim", OptionType::kInteger, "64", 1, 4096, false, "full width D of the ViT (channels)"},
      {"depth", OptionType::kInteger, "4", 1, 64, false, "transformer blocks"},
      {"heads", OptionType::kInteger, "4", 1, 64, false,
       "attention heads (fixed for every width: head_dim = d / heads)"},
      {"patch", OptionType::kInteger, "7", 1, 64, false, "square patch side (divides H and W)"},
      epochs_option(default_epochs, "training epochs"),
      {"batch", OptionType::kInteger, "128", 1, 1e9, false, "mini-batch size"},
      learning_rate_option("lr", "0.001", "AdamW peak learning rate (cosine schedule)"),
      {"weight-decay", OptionType::kReal, "0.05", 0, 1, false, "AdamW weight decay"},
      {"lr-warmup", OptionType::kReal, "0.5", 0, 1000, false,
       "epochs of linear learning-rate warm-up before the cosine decay"},
      {"pad", OptionType::kInteger, "2", 0, 16, false,
       "random-crop padding in pixels (0: no cropping)"},
      {"flip", OptionType::kInteger, "1", 0, 1, false, "random horizontal flips (1) or none (0)"},
      seed_option(),
      {"tf32", OptionType::kInteger, "0", 0, 1, false,
       "1: on CUDA, float32 matrix products on TF32 tensor cores (no effect on the CPU)"},
  };
}

VitConfig vit_config(const Options& o, const Dataset& data) {
  if (data.shape.size() != 3)
    throw OptionError("the ViT methods need images ({C, H, W} examples), not " +
                      std::to_string(data.shape.size()) + "-dimensional rows");
  VitConfig c;
  c.channels = data.shape[0];
  c.height = data.shape[1];
  c.width = data.shape[2];
  c.patch = o.integer("patch");
  c.dim = o.integer("dim");
  c.depth = o.integer("depth");
  c.heads = o.integer("heads");
  c.classes = data.classes;
  c.validate();
  return c;
}

Recipe recipe(const Options& o, const Dataset& data) {
  Recipe r;
  r.vit = vit_config(o, data);
  r.epochs = static_cast<int>(o.integer("epochs"));
  r.batch = o.integer("batch");
  r.lr = o.real("lr");
  r.weight_decay = o.real("weight-decay");
  r.lr_warmup_epochs = o.real("lr-warmup");
  r.pad = o.integer("pad");
  r.flip = o.integer("flip") != 0;
  r.seed = o.seed();
  r.tf32 = o.integer("tf32") != 0;
  return r;
}

void set_matmul_precision(const Recipe& r, const torch::Device& device) {
  if (device.is_cuda())
    at::globalContext().setFloat32MatmulPrecision(std::string(r.tf32 ? "high" : "highest"));
}

// out[b][c][i][j] = padded[b][c][oy_b + i][ox_b + (flip_b ? W - 1 - j : j)], padded = x with
// `pad` zero pixels on every side; oy_b, ox_b uniform in [0, 2 pad]. One gather for the batch.
torch::Tensor augment(const torch::Tensor& images, const VitConfig& c, int64_t pad, bool flip,
                      torch::Generator& generator) {
  if (pad == 0 && !flip) return images;
  const int64_t b = images.size(0), h = c.height, w = c.width;
  const auto cpu = torch::TensorOptions().dtype(torch::kInt64);
  const torch::Tensor oy = torch::randint(0, 2 * pad + 1, {b, 1}, generator, cpu);  // [B][1]
  const torch::Tensor ox = torch::randint(0, 2 * pad + 1, {b, 1}, generator, cpu);
  const torch::Tensor mirror = flip ? torch::randint(0, 2, {b, 1}, generator, cpu)
                                    : torch::zeros({b, 1}, cpu);
  const torch::Tensor j = torch::arange(w, cpu).unsqueeze(0);  // [1][W]
  const torch::Tensor rows = oy + torch::arange(h, cpu).unsqueeze(0);                  // [B][H]
  const torch::Tensor cols = ox + torch::where(mirror.to(torch::kBool), w - 1 - j, j);  // [B][W]
  const torch::Device device = images.device();
  // The indices are drawn on the CPU (the same draws on every device) and copied in one piece.
  const torch::Tensor index = torch::cat({rows, cols}, /*dim=*/1).to(device);  // [B][H+W]
  const torch::Tensor padded =
      torch::constant_pad_nd(images.reshape({b, c.channels, h, w}), {pad, pad, pad, pad}, 0)
          .permute({0, 2, 3, 1});  // [B][H+2p][W+2p][C]
  const torch::Tensor out =
      padded.index({torch::arange(b, torch::TensorOptions().dtype(torch::kInt64).device(device))
                        .view({b, 1, 1}),
                    index.narrow(1, 0, h).view({b, h, 1}),
                    index.narrow(1, h, w).view({b, 1, w})});  // [B][H][W][C]
  return out.permute({0, 3, 1, 2}).reshape({b, -1});
}

ScheduleImpl::ScheduleImpl(double lr_, int64_t warmup_steps, int64_t total_steps)
    : lr(lr_), warmup(warmup_steps), total(std::max<int64_t>(total_steps, 1)) {
  counter = register_buffer("counter", torch::zeros({1}, torch::kInt64));
}

void ScheduleImpl::apply(torch::optim::Optimizer& optimizer) {
  const int64_t t = step();
  double rate;
  if (t < warmup) {
    rate = lr * static_cast<double>(t + 1) / static_cast<double>(warmup);
  } else {
    const double progress = static_cast<double>(t - warmup) /
                            static_cast<double>(std::max<int64_t>(total - warmup, 1));
    rate = lr * 0.5 * (1.0 + std::cos(kPi * std::min(progress, 1.0)));
  }
  for (auto& group : optimizer.param_groups()) group.options().set_lr(rate);
  counter += 1;
}

double test_accuracy(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                     const Dataset& test) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> predictions;
  for (int64_t first = 0; first < test.size(); first += kEvalChunk) {
    const int64_t n = std::min(kEvalChunk, test.size() - first);
    predictions.push_back(forward(test.inputs.narrow(/*dim=*/0, first, n)).argmax(/*dim=*/1));
  }
  return accuracy(torch::cat(predictions), test.labels);
}

torch::Tensor full_width_loss(const VitOutput& out, const torch::Tensor& labels,
                              const torch::Tensor& dist_labels) {
  namespace F = torch::nn::functional;
  return 0.5 * F::cross_entropy(out.cls, labels) + 0.5 * F::cross_entropy(out.dist, dist_labels);
}

SlimmableVit dense_model(Vit net) {
  const VitConfig& c = net->config();
  return SlimmableVit(net, WidthGrid(c.dim, /*s=*/1.0, /*eps=*/1.0, c.heads), /*isolated=*/false);
}

DenseRun train_dense_vit(const std::string& name, const VitConfig& config, const Recipe& r,
                         uint64_t seed, const RunInputs& in, const std::string& file, bool reuse) {
  DenseRun run;
  if (reuse && !file.empty() && exists(file)) {
    SlimmableVit model = load_vit(file);
    const VitConfig& c = model.net()->config();
    if (c.channels != config.channels || c.height != config.height || c.width != config.width ||
        c.classes != config.classes)
      throw ModelError(file + ": a ViT for other images or classes than this run's data");
    run.net = model.net();
    run.net->to(in.ctx.device);
    run.loaded = true;
    return run;
  }
  const Dataset& train = in.data.train;
  set_matmul_precision(r, in.ctx.device);
  Stage stage;
  stage.generator = seeded_build(seed, [&] { run.net = Vit(config); });
  Vit net = run.net;
  net->to(in.ctx.device);
  ForeachAdamW optimizer(net->parameters(),
                         torch::optim::AdamWOptions(r.lr).weight_decay(r.weight_decay));
  const int64_t per_epoch = r.steps_per_epoch(train.size());
  Schedule schedule(r.lr, std::llround(r.lr_warmup_epochs * static_cast<double>(per_epoch)),
                    per_epoch * r.epochs);
  stage.name = name;
  stage.epochs = r.epochs;
  stage.batch_size = r.batch;
  stage.examples = train.size();
  stage.modules = {net.get(), schedule.get()};
  stage.optimizers = {&optimizer, nullptr};
  stage.step = [&](const torch::Tensor& batch) {
    net->train();
    const torch::Tensor x =
        augment(train.inputs.index_select(0, batch), config, r.pad, r.flip, stage.generator);
    const torch::Tensor y = train.labels.index_select(0, batch);
    const torch::Tensor loss = full_width_loss(net->forward(x), y, y);
    optimizer.zero_grad();
    loss.backward();
    schedule->apply(optimizer);
    optimizer.step();
    return std::vector<double>{loss.item<double>()};
  };
  stage.evaluate = [&] {
    net->eval();
    return Metrics{{"test accuracy", test_accuracy([&](const torch::Tensor& x) {
                      return net->forward(x).logits();
                    }, in.data.test)}};
  };
  run.outcome = run_stage(stage, in.ctx);
  if (run.outcome.complete && !file.empty()) {
    SlimmableVit model = dense_model(net);
    save_vit(model, in.ctx.metadata, file);
  }
  return run;
}

}  // namespace septa::nn
