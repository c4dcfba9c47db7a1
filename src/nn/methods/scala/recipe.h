// The training recipe shared by Scala, US-Net and separately trained ViTs, so the three differ
// only in what the method changes: the ViT's options, light augmentation (random crop with
// padding, horizontal flip), AdamW with a cosine learning-rate schedule, batched evaluation, and
// the dense-ViT training used by the teacher and the separate-training baseline.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "nn/methods/scala/vit.h"
#include "nn/registry.h"

namespace septa::nn {

// Option rows of the ViT and the recipe (dim, depth, heads, patch, epochs, batch, lr,
// weight-decay, lr-warmup, pad, flip, seed); each method appends its own.
std::vector<OptionSpec> vit_recipe_options(int default_epochs);

// The ViT of `options` for images of `data`'s shape and class count; OptionError naming the
// option when the data are not images or the patch does not divide them.
VitConfig vit_config(const Options& options, const Dataset& data);

// Random crop with zero padding `pad` and a horizontal flip with probability 1/2 (when `flip`),
// independently per image, drawn from `generator`: [B][C*H*W] -> [B][C*H*W].
torch::Tensor augment(const torch::Tensor& images, const VitConfig& config, int64_t pad, bool flip,
                      torch::Generator& generator);

// Linear warm-up then cosine decay (Loshchilov & Hutter 2017), per optimisation step t:
//   lr(t) = lr * (t + 1) / W                                   for t < W
//   lr(t) = lr * (1 + cos(pi * (t - W) / (S - W))) / 2         otherwise, S = total steps
// The step counter is a buffer, so it is saved and restored with the stage's state.
struct ScheduleImpl : torch::nn::Module {
  ScheduleImpl(double lr, int64_t warmup_steps, int64_t total_steps);
  // Sets the optimiser's learning rate for the current step and advances the counter.
  void apply(torch::optim::Optimizer& optimizer);
  int64_t step() const { return counter.item<int64_t>(); }

  double lr;
  int64_t warmup, total;
  torch::Tensor counter;  // [1] int64: optimisation steps taken
};
TORCH_MODULE(Schedule);

// What every ViT stage needs from the options.
struct Recipe {
  VitConfig vit;
  int epochs = 1;
  int64_t batch = 128;
  double lr = 1e-3;
  double weight_decay = 0.05;
  double lr_warmup_epochs = 0;
  int64_t pad = 2;
  bool flip = true;
  uint64_t seed = 1;
  bool tf32 = false;  // CUDA: float32 matrix products on TF32 tensor cores
  int64_t steps_per_epoch(int64_t examples) const { return (examples + batch - 1) / batch; }
};
Recipe recipe(const Options& options, const Dataset& data);

// On a CUDA device, float32 matrix products in TF32 when r.tf32 (torch's "high" float32 matmul
// precision: 10-bit mantissas in the products, float32 sums), else in full float32; nothing on
// the CPU. Process-wide, like torch's own setting.
void set_matmul_precision(const Recipe& r, const torch::Device& device);

// Test accuracy of `forward` ([n][F] images -> logits) over `test`, in chunks of 500, no grad.
double test_accuracy(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                     const Dataset& test);

// 0.5 CE(cls, y) + 0.5 CE(dist, y_dist): the full network's loss (y_dist = labels, or the
// teacher's predictions under distillation; DeiT's hard distillation).
torch::Tensor full_width_loss(const VitOutput& out, const torch::Tensor& labels,
                              const torch::Tensor& dist_labels);

// Trains one dense ViT of `config` as stage `name` (seeded by `seed`) with the recipe and the
// full-width loss against the labels; tested after every epoch. Returns the trained net (on the
// run's device) and the outcome. With `reuse` and an existing `file` the net is loaded from it
// instead (ModelError when it is for other images or classes); when training completes and
// `file` is not empty it is saved there.
struct DenseRun {
  Vit net = nullptr;
  StageOutcome outcome;
  bool loaded = false;
};
DenseRun train_dense_vit(const std::string& name, const VitConfig& config, const Recipe& r,
                         uint64_t seed, const RunInputs& in, const std::string& file, bool reuse);

// A dense ViT as a slimmable model of one width (its own grid {D}, front slicing).
SlimmableVit dense_model(Vit net);

}  // namespace septa::nn
