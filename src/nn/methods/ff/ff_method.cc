// Forward-Forward as a registered method: options, and training through the shared loop.
#include "nn/methods/ff/ff_method.h"

#include <memory>

#include "nn/methods/ff/forward_forward.h"

namespace septa::nn {
namespace {

RunResult train_ff(const RunInputs& in) {
  const Options& o = in.options;
  const Dataset& train = in.data.train;
  const Dataset& test = in.data.test;
  const FFNetOptions net_options{train.features(), train.classes, o.sizes("hidden"),
                                 o.real("theta"), o.real("lr")};
  std::unique_ptr<FFNet> net;
  Stage stage;
  stage.generator = seeded_build(o.seed(), [&] { net = std::make_unique<FFNet>(net_options); });
  net->to(in.ctx.device);
  stage.name = "ff";
  stage.epochs = static_cast<int>(o.integer("epochs"));
  stage.batch_size = o.integer("batch");
  stage.examples = train.size();
  stage.loss_names.clear();
  for (size_t k = 0; k < net->layers().size(); ++k) {
    stage.loss_names.push_back("layer " + std::to_string(k) + " loss");
    stage.modules.push_back(net->layers()[k].get());
    stage.optimizers.push_back(net->optimizers()[k].get());
  }
  const torch::Generator generator = stage.generator;
  stage.step = [&net, &train, generator](const torch::Tensor& batch) {
    return net->train_step(train.inputs.index_select(0, batch), train.labels.index_select(0, batch),
                           generator);
  };
  // Testing every epoch costs C forward passes over the test set; not counted as training.
  stage.evaluate = [&net, &test] {
    return Metrics{{"test accuracy", accuracy(net->predict(test.inputs), test.labels)}};
  };
  const StageOutcome outcome = run_stage(stage, in.ctx);
  RunResult result;
  result.method = "ff";
  result.cancelled = !outcome.complete;
  result.seconds = outcome.seconds;
  if (outcome.metrics.count("test accuracy"))
    result.metrics["test accuracy"] = outcome.metrics.at("test accuracy");
  for (size_t k = 0; k < net->layers().size(); ++k) {
    const std::string loss = stage.loss_names[k];
    if (outcome.metrics.count(loss))
      result.parts.push_back({"layer " + std::to_string(k), {{"loss", outcome.metrics.at(loss)}}});
  }
  return result;
}

}  // namespace

MethodEntry ff_method() {
  MethodEntry entry;
  entry.info.name = "ff";
  entry.info.summary =
      "Forward-Forward (Hinton 2022): each layer trained by its own goodness loss, label overlay";
  entry.info.options = {
      {"hidden", OptionType::kSizes, "500,500", 1, 1e6, false, "units per FF layer"},
      epochs_option(15, "training epochs"),
      batch_option(),
      learning_rate_option("lr", "0.05", "Adam learning rate of every layer"),
      {"theta", OptionType::kReal, "2", 0, 1e6, false,
       "goodness threshold (goodness = mean square activity)"},
      seed_option(),
  };
  entry.train = train_ff;
  return entry;
}

}  // namespace septa::nn
