// The baseline: the same encoders as the UFF cells and the same head, trained end to end by
// backpropagation of the classification loss (gradients do cross cells here).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "septa/nn/cell.h"
#include "septa/nn/uff.h"

namespace septa::nn {

// Encoders of UFF cells (decoders unused) chained by normalise_latent, and a head on the
// concatenated normalised latents: exactly the UFF inference path, but one graph.
struct BackpropNetImpl : torch::nn::Module {
  explicit BackpropNetImpl(const UffOptions& options);
  // [N][784] images -> [N][10] logits.
  torch::Tensor forward(const torch::Tensor& images);

  std::vector<Cell> cells_;
  Head head_ = nullptr;
};
TORCH_MODULE(BackpropNet);

// Trains the net end to end by cross-entropy for options.cell_epochs epochs (one AdamW over all
// parameters, learning rate options.learning_rate) and tests it.
MethodResult train_backprop(const UffOptions& options, const ImageSet& train, const ImageSet& test,
                            const ProgressCallback& progress);

}  // namespace septa::nn
