// Method registry and defaults.
#include "septa/nn/methods.h"

#include "septa/error.h"

namespace septa::nn {

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"ff", "uff-ae", "uff-dae", "uff-conv", "backprop"};
  return names;
}

bool is_uff(const std::string& method) { return method.rfind("uff-", 0) == 0; }

MethodConfig default_config(const std::string& method) {
  MethodConfig config;
  config.method = method;
  if (method == "ff") {
    config.ff.learning_rate = 0.05;
    config.ff.epochs = 15;
    return config;
  }
  if (method == "uff-ae" || method == "backprop") {
    config.uff.kind = CellKind::kAutoencoder;
    if (method == "backprop") config.uff.cell_epochs = 10;
    return config;
  }
  if (method == "uff-dae") {
    config.uff.kind = CellKind::kDenoisingAutoencoder;
    return config;
  }
  if (method == "uff-conv") {
    config.uff.kind = CellKind::kConvAutoencoder;
    config.uff.widths = {16, 32};
    return config;
  }
  throw OptionError("unknown --method '" + method +
                    "' (expected ff, uff-ae, uff-dae, uff-conv or backprop)");
}

MethodResult run_method(const MethodConfig& config, const ImageSet& train, const ImageSet& test,
                        const ProgressCallback& progress, const std::string& save_dir) {
  if (config.method == "ff") return train_forward_forward(config.ff, train, test, progress);
  if (config.method == "backprop") return train_backprop(config.uff, train, test, progress);
  if (is_uff(config.method)) return train_uff(config.uff, train, test, progress, save_dir);
  throw OptionError("unknown --method '" + config.method + "'");
}

}  // namespace septa::nn
