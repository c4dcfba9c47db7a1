// Unsupervised Forward-Forward pipelines: cells chained on detached, normalised latents, and a
// classifier head on the concatenated latents, the only part that sees labels. Each cell can be
// trained in its own process from the saved cells before it, with results identical to
// in-process training.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "nn/data/dataset.h"
#include "nn/loop.h"
#include "nn/methods/uff/cell.h"
#include "nn/options.h"

namespace septa::nn {

struct UffOptions {
  CellKind kind = CellKind::kAutoencoder;
  std::vector<int64_t> widths = {1000, 1000};  // per cell: latent units (dense) or channels (conv)
  int cell_epochs = 5;                         // epochs per cell
  int head_epochs = 10;                        // epochs of the classifier head
  int64_t batch_size = 100;
  double learning_rate = 1e-3;                 // AdamW, cells
  double head_learning_rate = 1e-3;            // AdamW, head
  double weight_decay = 1e-4;
  double noise = 0.3;                          // masking probability (dae cells)
  int64_t head_hidden = 0;                     // 0: linear softmax head; else one ReLU layer
  uint64_t seed = 1;
};

// The UFF settings of a validated option set (options absent from a method's table keep
// UffOptions' defaults).
UffOptions uff_options(const Options& options, CellKind kind);

// The spec of cell k given its per-example input shape; OptionError for k outside the widths.
CellSpec cell_spec(const UffOptions& options, int k, const std::vector<int64_t>& input_shape);

// Per-example shape of the data as cell 0 sees it: {F} dense, {C, H, W} conv (OptionError
// when the data are not images).
std::vector<int64_t> cell_input_shape(CellKind kind, const std::vector<int64_t>& example_shape);

// normalise_latent(cell.encode(inputs)) without gradients, in fixed chunks: [N][...] -> [N][...].
torch::Tensor encode_normalised(Cell& cell, const torch::Tensor& inputs);

struct HeadOptions {
  int64_t in_features = 0;
  int64_t hidden = 0;  // 0: linear
  int64_t classes = 10;
};

// The classifier on concatenated latents: linear, or linear-ReLU-linear.
struct HeadImpl : torch::nn::Module {
  explicit HeadImpl(const HeadOptions& options);
  // [N][in_features] -> [N][classes] logits.
  torch::Tensor forward(const torch::Tensor& features);

  HeadOptions options_;
  torch::nn::Linear hidden_ = nullptr;  // weight [hidden][in] (absent for a linear head)
  torch::nn::Linear output_ = nullptr;  // weight [classes][hidden or in]
};
TORCH_MODULE(Head);

// The head's input: concatenation of every cell's flattened normalised latent: [N][sum_k D_k].
torch::Tensor head_features(std::vector<Cell>& cells, const torch::Tensor& inputs);

// argmax of the head's logits: [N][D] -> [N] int64.
torch::Tensor predict_head(Head& head, const torch::Tensor& features);

// Head files: checkpoints of kind "head" (see checkpoint.h). IoError, ModelError as load_cell.
void save_head(Head& head, const std::string& path, const Metadata& metadata);
Head load_head(const std::string& path, const std::string& method = "");

// Trains a freshly seeded cell k on `inputs` (cell k-1's normalised latents, or the data) with
// the shared loop; `outcome` receives the stage's outcome.
Cell train_cell(const UffOptions& options, int k, const torch::Tensor& inputs,
                const std::vector<int64_t>& input_shape, const RunContext& ctx,
                StageOutcome* outcome);

// Trains the head by cross-entropy on detached `features` ([N][D]) and `labels` ([N]).
Head train_head(const UffOptions& options, const torch::Tensor& features,
                const torch::Tensor& labels, int64_t classes, const RunContext& ctx,
                StageOutcome* outcome);

// Paths inside a run directory: DIR/cell_<k>.safetensors and DIR/head.safetensors.
std::string cell_path(const std::string& dir, int k);
std::string head_path(const std::string& dir);

// Loads DIR's cells 0..count-1 (written by `method` unless empty) onto `device`; IoError names
// the first missing one.
std::vector<Cell> load_cells(const std::string& dir, int count, const std::string& method,
                             const torch::Device& device);

// The whole UFF method in one process; saves cells and head to `dir` unless empty. With
// ctx.resume, cells already saved in `dir` are loaded instead of trained again.
RunResult train_uff(const UffOptions& options, const Split& data, const RunContext& ctx,
                    const std::string& dir);

// One pipeline step in its own process: loads cells 0..k-1 from `dir`, trains cell k, saves it.
RunResult train_cell_from_dir(const UffOptions& options, int k, const std::string& dir,
                              const Split& data, const RunContext& ctx);

// The last pipeline step: loads all cells, trains the head, saves it, tests.
RunResult train_head_from_dir(const UffOptions& options, const std::string& dir,
                              const Split& data, const RunContext& ctx);

// Test accuracy of the saved cells (count of them) and head in `dir`.
double evaluate_dir(const std::string& dir, int count, const std::string& method,
                    const Dataset& test, const torch::Device& device);

}  // namespace septa::nn
