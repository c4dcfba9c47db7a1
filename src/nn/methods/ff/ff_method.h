// The registry entry of Forward-Forward ("ff").
#pragma once

#include "nn/registry.h"

namespace septa::nn {

MethodEntry ff_method();

}  // namespace septa::nn
