// The registry entries of the unsupervised FF pipelines ("uff-ae", "uff-dae", "uff-conv").
#pragma once

#include <string>

#include "nn/methods/uff/cell.h"
#include "nn/registry.h"

namespace septa::nn {

MethodEntry uff_method(const std::string& name, CellKind kind);

}  // namespace septa::nn
