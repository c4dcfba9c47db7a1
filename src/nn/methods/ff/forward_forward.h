// Forward-Forward (Hinton 2022): fully connected ReLU layers, each trained by its own local
// goodness objective and optimiser; no gradient crosses layers.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <optional>
#include <vector>

namespace septa::nn {

// g(h) = mean_j h_j^2, the goodness of each row of `h` ([N][H] -> [N]).
torch::Tensor goodness(const torch::Tensor& h);

// Layer loss = mean_n softplus(theta - g(h_pos_n)) + mean_n softplus(g(h_neg_n) - theta).
torch::Tensor ff_loss(const torch::Tensor& h_pos, const torch::Tensor& h_neg, double theta);

// x / (||x||_2 + 1e-4) per row: hides the previous layer's goodness from the next layer.
torch::Tensor length_normalise(const torch::Tensor& x);

// Writes `labels` one-hot into the first `classes` features, at each row's max value
// ([N][F] -> copy; F >= classes).
torch::Tensor overlay_labels(const torch::Tensor& images, const torch::Tensor& labels,
                             int64_t classes);

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

struct FFNetOptions {
  int64_t in_features = 784;
  int64_t classes = 10;
  std::vector<int64_t> hidden = {500, 500};  // units per layer
  double theta = 2.0;                        // goodness threshold (mean-square goodness)
  double learning_rate = 1e-3;               // Adam, one optimiser per layer
};

// A stack of FF layers, each with its own Adam optimiser.
class FFNet {
 public:
  explicit FFNet(const FFNetOptions& options);

  // One local step per layer on a batch; returns each layer's loss. Inputs are detached per
  // layer. Negative labels are drawn from `generator` (torch's default when absent).
  std::vector<double> train_step(const torch::Tensor& images, const torch::Tensor& labels,
                                 c10::optional<torch::Generator> generator = c10::nullopt);
  // Goodness of each candidate label summed over layers: [N][F] -> [N][classes].
  torch::Tensor label_goodness(const torch::Tensor& images);
  // argmax over labels of the accumulated goodness: [N][F] -> [N] int64.
  torch::Tensor predict(const torch::Tensor& images);
  // Moves layers (and so their optimisers' parameters) to `device`; call before training.
  void to(const torch::Device& device);

  std::vector<FFLayer>& layers() { return layers_; }
  std::vector<std::unique_ptr<torch::optim::Adam>>& optimizers() { return optimizers_; }

 private:
  FFNetOptions options_;
  std::vector<FFLayer> layers_;
  std::vector<std::unique_ptr<torch::optim::Adam>> optimizers_;  // one per layer
};

}  // namespace septa::nn
