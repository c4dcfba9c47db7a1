// The methods of the harness by name, with their default settings: one entry point used by the
// CLI and the bench.
#pragma once

#include <string>
#include <vector>

#include "septa/nn/backprop.h"
#include "septa/nn/forward_forward.h"
#include "septa/nn/uff.h"

namespace septa::nn {

// "ff", "uff-ae", "uff-dae", "uff-conv", "backprop" (backprop over the dense encoders).
const std::vector<std::string>& method_names();

struct MethodConfig {
  std::string method = "uff-ae";
  FFOptions ff;    // used by "ff"
  UffOptions uff;  // used by "uff-*" and "backprop"
};

// The defaults of `method` (the settings measured in docs/nn.md); OptionError if unknown.
MethodConfig default_config(const std::string& method);

// True for the uff-* methods (those made of separately trainable cells).
bool is_uff(const std::string& method);

// Runs `config` on the split; UFF cells and head are saved to `save_dir` unless empty.
MethodResult run_method(const MethodConfig& config, const ImageSet& train, const ImageSet& test,
                        const ProgressCallback& progress, const std::string& save_dir);

}  // namespace septa::nn
