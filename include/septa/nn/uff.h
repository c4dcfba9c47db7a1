// Unsupervised Forward-Forward pipelines: cells chained on detached, normalised latents, and a
// classifier head on the concatenated latents, the only part that sees labels. Each cell can be
// trained in its own process from the saved cells before it, with results identical to
// in-process training.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "septa/nn/cell.h"
#include "septa/nn/fashion_mnist.h"
#include "septa/nn/training.h"

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

// Checks ranges; OptionError names the offending option.
void validate(const UffOptions& options);

// The spec of cell k given its per-example input shape.
CellSpec cell_spec(const UffOptions& options, int k, const std::vector<int64_t>& input_shape);

// Per-example shape of the images as cell 0 sees them: {784} dense or {1, 28, 28} conv.
std::vector<int64_t> image_shape(CellKind kind);

// normalise_latent(cell.encode(inputs)) without gradients, in fixed chunks: [N][...] -> [N][...].
torch::Tensor encode_normalised(Cell& cell, const torch::Tensor& inputs);

// Trains a freshly seeded cell k on `inputs` (cell k-1's normalised latents, or the images).
// Sets *final_loss to the last epoch's mean local loss when non-null.
Cell train_cell(const UffOptions& options, int k, const torch::Tensor& inputs,
                const ProgressCallback& progress, double* final_loss);

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
torch::Tensor head_features(std::vector<Cell>& cells, const torch::Tensor& images);

// Trains the head by cross-entropy on detached `features` ([N][D]) and `labels` ([N]).
Head train_head(const UffOptions& options, const torch::Tensor& features,
                const torch::Tensor& labels, const ProgressCallback& progress, double* final_loss);

// argmax of the head's logits: [N][D] -> [N] int64.
torch::Tensor predict_head(Head& head, const torch::Tensor& features);

// Writes / reads the head (spec and weights; temp file and rename). IoError, ModelError.
void save_head(Head& head, const std::string& path);
Head load_head(const std::string& path);

// Paths inside a cells directory: DIR/cell_<k>.pt and DIR/head.pt.
std::string cell_path(const std::string& dir, int k);
std::string head_path(const std::string& dir);

// Loads DIR/cell_0.pt .. DIR/cell_<count-1>.pt; IoError names the first missing one.
std::vector<Cell> load_cells(const std::string& dir, int count);

// The whole UFF method in one process; saves cells and head to `save_dir` unless empty.
MethodResult train_uff(const UffOptions& options, const ImageSet& train, const ImageSet& test,
                       const ProgressCallback& progress, const std::string& save_dir);

// One pipeline step in its own process: loads cells 0..k-1 from `dir`, trains cell k, saves it.
// Returns cell k's final local loss.
double train_cell_from_dir(const UffOptions& options, int k, const std::string& dir,
                           const ImageSet& train, const ProgressCallback& progress);

// The last pipeline step: loads all cells, trains the head, saves it, returns test accuracy.
double train_head_from_dir(const UffOptions& options, const std::string& dir,
                           const ImageSet& train, const ImageSet& test,
                           const ProgressCallback& progress);

// Test accuracy of the saved cells (count of them) and head in `dir`.
double evaluate_dir(const std::string& dir, int count, const ImageSet& test);

// True when two modules hold bit-identical parameters (same names, shapes and bytes).
bool same_weights(torch::nn::Module& a, torch::nn::Module& b);

}  // namespace septa::nn
