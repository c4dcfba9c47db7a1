// The one training loop of septa::nn: epochs of shuffled mini-batches, evaluation, progress with
// a metrics map, cancellation as a return value, an explicit generator, and resumable state.
//
// Every method describes each separately trained part as a Stage (its step, its evaluation,
// its modules and optimisers) and hands it to run_stage.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "nn/checkpoint.h"
#include "septa/nn/nn.h"

namespace septa::nn {

// What a run shares with all its stages.
struct RunContext {
  torch::Device device = torch::kCPU;
  ProgressCallback progress;   // may be empty
  std::string state_dir;       // where each stage saves its state after every epoch ("": nowhere)
  bool resume = false;         // continue a stage from its saved state when present
  Metadata metadata;           // method, options, seed: copied into every file written
};

using Metrics = std::map<std::string, double>;

struct Stage {
  std::string name;          // "cell 0", "head", "ff", "backprop"
  int epochs = 1;
  int64_t batch_size = 100;
  int64_t examples = 0;      // N: each epoch visits a permutation of [0, N)
  torch::Generator generator;  // data order and any noise of this stage
  // One optimisation step on the examples `batch` ([B] int64 on the run's device); returns the
  // losses named by loss_names.
  std::function<std::vector<double>(const torch::Tensor& batch)> step;
  std::vector<std::string> loss_names = {"loss"};
  // Called after every epoch (not timed as training) when set.
  std::function<Metrics()> evaluate;
  // Saved and restored with the stage's state (weights and Adam/AdamW moments).
  std::vector<torch::nn::Module*> modules;
  std::vector<torch::optim::Optimizer*> optimizers;  // optimizers[i] updates modules[i]
};

struct StageOutcome {
  bool stopped = false;    // the progress callback returned false: the run must stop
  bool complete = false;   // all epochs done (also when stopped after the last one)
  Metrics metrics;         // of the last completed epoch
  double seconds = 0.0;    // training wall time of this process's epochs
};

// Runs the stage's remaining epochs:
//   for each epoch: order = randperm(N, generator); for each batch of order: losses = step(batch)
//   metrics = mean loss per name over the batches (+ evaluate()); progress; save state.
// With ctx.resume and a saved state for this stage, weights, optimiser moments, generator and
// epoch are restored first, so the result equals an uninterrupted run's bit for bit. The saved
// state is removed once the stage completes.
StageOutcome run_stage(Stage& stage, const RunContext& ctx);

// Seeds torch's default generator with `seed`, runs `build` (libtorch's nn modules draw their
// initial weights from the default generator and take no other) and returns a generator that
// continues that stream: every later random draw of the stage names it explicitly. Serialised
// by a mutex so concurrent runs in one process do not interleave.
torch::Generator seeded_build(uint64_t seed, const std::function<void()>& build);

// Rows [start, start + size) of `order`, clipped at the end.
torch::Tensor batch_indices(const torch::Tensor& order, int64_t start, int64_t size);

// Fraction of `predictions` equal to `labels` ([N] int64 each).
double accuracy(const torch::Tensor& predictions, const torch::Tensor& labels);

// The torch device for "cpu" / "cuda" (see resolve_device).
torch::Device torch_device(const std::string& name);

}  // namespace septa::nn
