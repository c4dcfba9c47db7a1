// End-to-end backpropagation baseline over the UFF encoders:
//   x_0 = inputs, x_{k+1} = LayerNorm(enc_k(x_k)), logits = head([x_1, ..., x_K]),
//   all parameters minimise CE(logits, y) jointly (Rumelhart, Hinton, Williams 1986).
#include "nn/methods/backprop/backprop.h"

#include "septa/error.h"

namespace septa::nn {
namespace {

constexpr int64_t kEvalChunk = 1000;

RunResult train_backprop(const RunInputs& in) {
  const UffOptions options = uff_options(in.options, CellKind::kAutoencoder);
  const Dataset& train = in.data.train;
  const Dataset& test = in.data.test;
  const std::vector<int64_t> shape = cell_input_shape(options.kind, train.shape);
  BackpropNet net = nullptr;
  Stage stage;
  stage.generator =
      seeded_build(options.seed, [&] { net = BackpropNet(options, shape, train.classes); });
  net->to(in.ctx.device);
  torch::optim::AdamW optimizer(
      net->parameters(),
      torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));
  stage.name = "backprop";
  stage.epochs = options.cell_epochs;
  stage.batch_size = options.batch_size;
  stage.examples = train.size();
  stage.modules = {net.get()};
  stage.optimizers = {&optimizer};
  stage.step = [&](const torch::Tensor& batch) {
    net->train();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(
        net->forward(train.inputs.index_select(0, batch)), train.labels.index_select(0, batch));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    return std::vector<double>{loss.item<double>()};
  };
  // Tested every epoch; not counted as training time.
  stage.evaluate = [&] {
    torch::NoGradGuard no_grad;
    net->eval();
    std::vector<torch::Tensor> predictions;
    for (int64_t first = 0; first < test.size(); first += kEvalChunk) {
      const int64_t len = std::min(kEvalChunk, test.size() - first);
      predictions.push_back(
          net->forward(test.inputs.narrow(/*dim=*/0, first, len)).argmax(/*dim=*/1));
    }
    return Metrics{{"test accuracy", accuracy(torch::cat(predictions), test.labels)}};
  };
  const StageOutcome outcome = run_stage(stage, in.ctx);
  RunResult result;
  result.method = "backprop";
  result.cancelled = !outcome.complete;
  result.seconds = outcome.seconds;
  if (outcome.metrics.count("test accuracy"))
    result.metrics["test accuracy"] = outcome.metrics.at("test accuracy");
  if (outcome.metrics.count("loss"))
    result.parts.push_back({"end-to-end", {{"loss", outcome.metrics.at("loss")}}});
  return result;
}

}  // namespace

BackpropNetImpl::BackpropNetImpl(const UffOptions& options, const std::vector<int64_t>& input_shape,
                                 int64_t classes) {
  std::vector<int64_t> shape = input_shape;
  int64_t features = 0;
  for (int k = 0; k < static_cast<int>(options.widths.size()); ++k) {
    cells_.push_back(register_module("cell" + std::to_string(k),
                                     make_cell(cell_spec(options, k, shape))));
    shape = cells_.back()->latent_shape();
    features += product(shape);
  }
  head_ = register_module("head", Head(HeadOptions{features, options.head_hidden, classes}));
}

torch::Tensor BackpropNetImpl::forward(const torch::Tensor& inputs) {
  std::vector<torch::Tensor> latents;
  torch::Tensor x = inputs;
  for (auto& cell : cells_) {
    x = normalise_latent(cell->encode(x));
    latents.push_back(x.reshape({x.size(0), -1}));
  }
  return head_->forward(torch::cat(latents, /*dim=*/1));
}

MethodEntry backprop_method() {
  MethodEntry entry;
  entry.info.name = "backprop";
  entry.info.summary =
      "baseline: the uff-ae encoders and head trained end to end by backpropagation";
  entry.info.options = {
      {"widths", OptionType::kSizes, "1000,1000", 1, 1e6, false, "latent units per encoder"},
      epochs_option(10, "training epochs"),
      batch_option(),
      learning_rate_option("lr", "0.001", "AdamW learning rate"),
      {"weight-decay", OptionType::kReal, "0.0001", 0, 1, false, "AdamW weight decay"},
      {"head-hidden", OptionType::kInteger, "0", 0, 1e6, false,
       "hidden ReLU units of the head (0: linear head)"},
      seed_option(),
  };
  entry.train = train_backprop;
  return entry;
}

}  // namespace septa::nn
