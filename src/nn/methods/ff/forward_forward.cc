// Forward-Forward training.
//
// Reference: G. Hinton, "The Forward-Forward Algorithm: Some Preliminary Investigations", 2022.
//   goodness      g(h) = mean_j h_j^2                       (mean form; theta = 2)
//   p(positive)   = sigmoid(g(h) - theta)
//   layer loss    L = mean softplus(theta - g(h_pos)) + mean softplus(g(h_neg) - theta)
//   layer k       h_k = relu(W_k (h_{k-1} / (||h_{k-1}|| + 1e-4)) + b_k),  h_{k-1} detached
//   positive data = image with the true label one-hot in pixels 0..9 (at the image's max value);
//   negative data = the same image with a wrong label.
//   prediction    = argmax_y sum_k g(h_k(overlay(x, y))).
#include "nn/methods/ff/forward_forward.h"

#include "septa/error.h"

namespace septa::nn {

constexpr int64_t kEvalChunk = 2000;

torch::Tensor goodness(const torch::Tensor& h) { return h.pow(2).mean(/*dim=*/1); }

torch::Tensor ff_loss(const torch::Tensor& h_pos, const torch::Tensor& h_neg, double theta) {
  return torch::softplus(theta - goodness(h_pos)).mean() +
         torch::softplus(goodness(h_neg) - theta).mean();
}

torch::Tensor length_normalise(const torch::Tensor& x) {
  return x / (x.norm(/*p=*/2, /*dim=*/1, /*keepdim=*/true) + 1e-4);
}

torch::Tensor overlay_labels(const torch::Tensor& images, const torch::Tensor& labels,
                             int64_t classes) {
  SEPTA_CHECK(images.dim() == 2 && images.size(1) >= classes);
  torch::Tensor out = images.clone();                                     // [N][F]
  const torch::Tensor peak = std::get<0>(images.max(/*dim=*/1, /*keepdim=*/true));  // [N][1]
  out.narrow(/*dim=*/1, /*start=*/0, /*length=*/classes).zero_();
  out.scatter_(/*dim=*/1, labels.unsqueeze(1), peak);
  return out;
}

FFLayerImpl::FFLayerImpl(const FFLayerOptions& options) : options_(options) {
  linear_ = register_module("linear", torch::nn::Linear(options.in_features, options.out_features));
}

torch::Tensor FFLayerImpl::forward(const torch::Tensor& x) {
  return torch::relu(linear_->forward(length_normalise(x)));
}

FFNet::FFNet(const FFNetOptions& options) : options_(options) {
  if (options.hidden.empty()) throw OptionError("--hidden needs at least one layer for ff");
  if (options.classes < 2 || options.classes > options.in_features)
    throw OptionError("ff writes the label into the first features: needs 2 <= classes (" +
                      std::to_string(options.classes) + ") <= features (" +
                      std::to_string(options.in_features) + ")");
  int64_t in = options.in_features;
  for (int64_t out : options.hidden) {
    if (out < 1) throw OptionError("--hidden sizes must be >= 1");
    layers_.emplace_back(FFLayerOptions{in, out});
    optimizers_.push_back(std::make_unique<torch::optim::Adam>(
        layers_.back()->parameters(), torch::optim::AdamOptions(options.learning_rate)));
    in = out;
  }
}

void FFNet::to(const torch::Device& device) {
  for (auto& layer : layers_) layer->to(device);
}

std::vector<double> FFNet::train_step(const torch::Tensor& images, const torch::Tensor& labels,
                                      c10::optional<torch::Generator> generator) {
  const int64_t classes = options_.classes;
  // A uniformly drawn wrong label: (y + U{1..C-1}) mod C.
  const torch::Tensor offset =
      torch::randint(/*low=*/1, /*high=*/classes, labels.sizes(), generator, torch::kInt64)
          .to(labels.device());                                     // [N]
  const torch::Tensor wrong = (labels + offset).remainder(classes);  // [N]
  torch::Tensor pos = overlay_labels(images, labels, classes);       // [N][F]
  torch::Tensor neg = overlay_labels(images, wrong, classes);        // [N][F]
  std::vector<double> losses;
  for (size_t k = 0; k < layers_.size(); ++k) {
    const torch::Tensor h_pos = layers_[k]->forward(pos);  // [N][H_k]
    const torch::Tensor h_neg = layers_[k]->forward(neg);  // [N][H_k]
    const torch::Tensor loss = ff_loss(h_pos, h_neg, options_.theta);
    optimizers_[k]->zero_grad();
    loss.backward();
    optimizers_[k]->step();
    losses.push_back(loss.item<double>());
    pos = h_pos.detach();  // no gradient crosses layers
    neg = h_neg.detach();
  }
  return losses;
}

torch::Tensor FFNet::label_goodness(const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  const int64_t n = images.size(0);
  const int64_t classes = options_.classes;
  const auto options = images.options();
  torch::Tensor scores = torch::zeros({n, classes}, options);  // [N][C]
  for (int64_t y = 0; y < classes; ++y) {
    torch::Tensor h =
        overlay_labels(images, torch::full({n}, y, options.dtype(torch::kInt64)), classes);
    torch::Tensor total = torch::zeros({n}, options);
    for (auto& layer : layers_) {
      h = layer->forward(h);
      total += goodness(h);
    }
    scores.select(/*dim=*/1, y).copy_(total);
  }
  return scores;
}

torch::Tensor FFNet::predict(const torch::Tensor& images) {
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += kEvalChunk) {
    const int64_t len = std::min(kEvalChunk, images.size(0) - start);
    parts.push_back(label_goodness(images.narrow(/*dim=*/0, start, len)).argmax(/*dim=*/1));
  }
  return torch::cat(parts);
}

}  // namespace septa::nn
