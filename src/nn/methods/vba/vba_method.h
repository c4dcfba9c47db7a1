// The registry entry of variational backdoor adjustment ("vba"): its option table. VBA trains on
// observational (x, y, z) arrays rather than labelled images, so its entry points are those of
// septa/nn/vba.h (septa nn vba fit|query|sample|generate|bench).
#pragma once

#include "nn/registry.h"

namespace septa::nn {

MethodEntry vba_method();

}  // namespace septa::nn
