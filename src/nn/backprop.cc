// End-to-end backpropagation baseline over the UFF encoders:
//   x_0 = images, x_{k+1} = LayerNorm(enc_k(x_k)), logits = head([x_1, ..., x_K]),
//   all parameters minimise CE(logits, y) jointly (Rumelhart, Hinton, Williams 1986).
#include "septa/nn/backprop.h"

#include <chrono>

#include "septa/error.h"

namespace septa::nn {
namespace {

constexpr int64_t kEvalChunk = 1000;

int64_t product(const std::vector<int64_t>& shape) {
  int64_t p = 1;
  for (int64_t d : shape) p *= d;
  return p;
}

}  // namespace

BackpropNetImpl::BackpropNetImpl(const UffOptions& options) {
  std::vector<int64_t> shape = image_shape(options.kind);
  int64_t features = 0;
  for (int k = 0; k < static_cast<int>(options.widths.size()); ++k) {
    cells_.push_back(register_module("cell" + std::to_string(k),
                                     make_cell(cell_spec(options, k, shape))));
    shape = cells_.back()->latent_shape();
    features += product(shape);
  }
  head_ = register_module("head", Head(HeadOptions{features, options.head_hidden, /*classes=*/10}));
}

torch::Tensor BackpropNetImpl::forward(const torch::Tensor& images) {
  std::vector<torch::Tensor> latents;
  torch::Tensor x = images;
  for (auto& cell : cells_) {
    x = normalise_latent(cell->encode(x));
    latents.push_back(x.reshape({x.size(0), -1}));
  }
  return head_->forward(torch::cat(latents, /*dim=*/1));
}

MethodResult train_backprop(const UffOptions& options, const ImageSet& train, const ImageSet& test,
                            const ProgressCallback& progress) {
  validate(options);
  seed_everything(options.seed);
  BackpropNet net(options);
  torch::optim::AdamW optimizer(
      net->parameters(),
      torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));
  MethodResult result;
  result.method = "backprop";
  result.epochs = options.cell_epochs;
  result.parts = {"end-to-end"};
  const int64_t n = train.size();
  double train_seconds = 0.0;
  for (int epoch = 1; epoch <= options.cell_epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    net->train();
    const torch::Tensor order = shuffled_order(n);
    double sum = 0.0;
    int64_t batches = 0;
    for (int64_t first = 0; first < n; first += options.batch_size, ++batches) {
      const torch::Tensor idx = batch_indices(order, first, options.batch_size);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(train.images.index_select(0, idx)),
                                                      train.labels.index_select(0, idx));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      sum += loss.item<double>();
    }
    const double mean = sum / static_cast<double>(std::max<int64_t>(batches, 1));
    result.part_losses = {mean};
    const double seconds = seconds_since(epoch_start);
    train_seconds += seconds;
    {
      // Tested every epoch; not counted as training time.
      torch::NoGradGuard no_grad;
      net->eval();
      std::vector<torch::Tensor> predictions;
      for (int64_t first = 0; first < test.size(); first += kEvalChunk) {
        const int64_t len = std::min(kEvalChunk, test.size() - first);
        predictions.push_back(
            net->forward(test.images.narrow(/*dim=*/0, first, len)).argmax(/*dim=*/1));
      }
      result.test_accuracy = accuracy(torch::cat(predictions), test.labels);
    }
    report_progress(progress, TrainProgress{"backprop", epoch, options.cell_epochs, {mean},
                                            seconds, result.test_accuracy});
  }
  result.seconds = train_seconds;
  return result;
}

}  // namespace septa::nn
