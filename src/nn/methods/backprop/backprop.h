// The baseline: the same encoders as the UFF cells and the same head, trained end to end by
// backpropagation of the classification loss (gradients do cross cells here).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "nn/methods/uff/uff.h"
#include "nn/registry.h"

namespace septa::nn {

// Encoders of UFF cells (decoders unused) chained by normalise_latent, and a head on the
// concatenated normalised latents: exactly the UFF inference path, but one graph.
struct BackpropNetImpl : torch::nn::Module {
  BackpropNetImpl(const UffOptions& options, const std::vector<int64_t>& input_shape,
                  int64_t classes);
  // [N][F] inputs -> [N][classes] logits.
  torch::Tensor forward(const torch::Tensor& inputs);

  std::vector<Cell> cells_;
  Head head_ = nullptr;
};
TORCH_MODULE(BackpropNet);

// The registry entry "backprop": the net trained by cross-entropy with one AdamW over all
// parameters, tested after every epoch.
MethodEntry backprop_method();

}  // namespace septa::nn
