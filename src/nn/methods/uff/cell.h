// Unsupervised Forward-Forward cells (Hwang, Seo, Jung 2024): self-contained unsupervised
// modules, each trained by its own ordinary loss and optimiser on the detached, normalised latent
// of the cell before it.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "nn/checkpoint.h"

namespace septa::nn {

enum class CellKind { kAutoencoder, kDenoisingAutoencoder, kConvAutoencoder };

// "ae", "dae", "conv"
std::string cell_kind_name(CellKind kind);
// Inverse of cell_kind_name; OptionError for an unknown name.
CellKind parse_cell_kind(const std::string& name);

// Elements per example of a tensor shape: the product of its dimensions.
inline int64_t product(const std::vector<int64_t>& shape) {
  int64_t p = 1;
  for (int64_t d : shape) p *= d;
  return p;
}

// Everything needed to rebuild a cell: saved with its weights.
struct CellSpec {
  CellKind kind = CellKind::kAutoencoder;
  std::vector<int64_t> input_shape = {784};  // per example: {F} dense or {C, H, W} conv
  int64_t width = 500;                       // latent units (dense) or channels (conv)
  double noise = 0.3;                        // masking probability of the denoising cell
  double learning_rate = 1e-3;               // AdamW
  double weight_decay = 1e-4;                // AdamW
};

// The cell interface: encode, local loss, train step. Subclasses own their parameters only.
struct CellImpl : torch::nn::Module {
  explicit CellImpl(const CellSpec& spec) : spec_(spec) {}

  // The latent of a batch: [N][input_shape...] -> [N][latent_shape...].
  virtual torch::Tensor encode(const torch::Tensor& x) = 0;
  // The cell's own unsupervised loss on a batch (scalar); `x` must carry no graph.
  virtual torch::Tensor local_loss(const torch::Tensor& x) = 0;
  // Per-example latent shape for this cell's input shape.
  virtual std::vector<int64_t> latent_shape() const = 0;

  // One optimiser step on local_loss(x.detach()); returns the loss. Creates the optimiser lazily.
  double train_step(const torch::Tensor& x);
  // This cell's AdamW (made on first use, over its parameters only).
  torch::optim::AdamW& optimizer();
  // Drops the optimiser state (a fresh AdamW is made by the next train_step).
  void reset_optimizer() { optimizer_.reset(); }

  CellSpec spec_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;  // this cell's parameters only
  c10::optional<torch::Generator> generator_;       // noise source (torch's default when unset)
};
TORCH_MODULE(Cell);

// Builds a freshly initialised cell from torch's global generator.
Cell make_cell(const CellSpec& spec);

// Layer normalisation without affine parameters over all but the batch dimension:
// z = (x - mean) / sqrt(var + 1e-5) per example. Used between cells.
torch::Tensor normalise_latent(const torch::Tensor& x);

// Writes spec and weights to `path` as a checkpoint (safetensors, checksummed, atomic) carrying
// `metadata` (the run's method, options, seed); IoError on failure.
void save_cell(Cell& cell, const std::string& path, const Metadata& metadata);
// Reads a cell written by save_cell; IoError if missing, ModelError if corrupt (checksum),
// truncated, not a cell file, or written by a method other than `method` (any when empty).
Cell load_cell(const std::string& path, const std::string& method = "");

}  // namespace septa::nn
