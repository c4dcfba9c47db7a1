// Forward-Forward (Hinton 2022): fully connected ReLU layers, each trained by its own local
// goodness objective and optimiser; no gradient crosses layers.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "septa/nn/fashion_mnist.h"
#include "septa/nn/training.h"

namespace septa::nn {

// g(h) = mean_j h_j^2, the goodness of each row of `h` ([N][H] -> [N]).
torch::Tensor goodness(const torch::Tensor& h);

// Layer loss = mean_n softplus(theta - g(h_pos_n)) + mean_n softplus(g(h_neg_n) - theta).
torch::Tensor ff_loss(const torch::Tensor& h_pos, const torch::Tensor& h_neg, double theta);

// x / (||x||_2 + 1e-4) per row: hides the previous layer's goodness from the next layer.
torch::Tensor length_normalise(const torch::Tensor& x);

// Writes `labels` one-hot into the first 10 pixels, at each image's max value ([N][784] -> copy).
torch::Tensor overlay_labels(const torch::Tensor& images, const torch::Tensor& labels);

struct FFLayerOptions {
  int64_t in_features = 784;
  int64_t out_features = 500;
};

// One FF layer: relu(W (x / (||x|| + 1e-4)) + b).
struct FFLayerImpl : torch::nn::Module {
  explicit FFLayerImpl(const FFLayerOptions& options);
  // [N][in] -> [N][out]; the input is length-normalised first.
  torch::Tensor forward(const torch::Tensor& x);

  FFLayerOptions options_;
  torch::nn::Linear linear_ = nullptr;  // weight [out][in], bias [out]
};
TORCH_MODULE(FFLayer);

struct FFOptions {
  std::vector<int64_t> hidden = {500, 500};  // units per layer
  double theta = 2.0;                        // goodness threshold (mean-square goodness)
  double learning_rate = 1e-3;               // Adam, one optimiser per layer
  int epochs = 10;
  int64_t batch_size = 100;
  uint64_t seed = 1;  // initialisation, data order and negative labels
};

// A stack of FF layers, each with its own Adam optimiser.
class FFNet {
 public:
  explicit FFNet(const FFOptions& options);

  // One local step per layer on a batch; returns each layer's loss. Inputs are detached per layer.
  std::vector<double> train_step(const torch::Tensor& images, const torch::Tensor& labels);
  // Goodness of each candidate label summed over layers: [N][784] -> [N][10].
  torch::Tensor label_goodness(const torch::Tensor& images);
  // argmax over labels of the accumulated goodness: [N][784] -> [N] int64.
  torch::Tensor predict(const torch::Tensor& images);

  std::vector<FFLayer>& layers() { return layers_; }

 private:
  FFOptions options_;
  std::vector<FFLayer> layers_;
  std::vector<std::unique_ptr<torch::optim::Adam>> optimizers_;  // one per layer
};

// Trains FF on `train` (negatives: a uniformly drawn wrong label per image per epoch) and tests.
MethodResult train_forward_forward(const FFOptions& options, const ImageSet& train,
                                   const ImageSet& test, const ProgressCallback& progress);

}  // namespace septa::nn
