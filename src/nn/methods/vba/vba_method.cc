// The "vba" registry entry.
#include "nn/methods/vba/vba_method.h"

#include "nn/methods/vba/training.h"

namespace septa::nn {

MethodEntry vba_method() {
  MethodEntry entry;
  entry.info.name = "vba";
  entry.info.summary =
      "variational backdoor adjustment: log p(y|do(x)) from observational (x, y, z) .npy arrays "
      "(septa nn vba fit|query|sample|generate|bench)";
  entry.info.options = vba::option_table();
  entry.train = [](const RunInputs&) -> RunResult {
    throw OptionError("method vba trains on (x, y, z) arrays, not labelled images: use "
                      "septa nn vba fit --data DIR --dir MODEL");
  };
  return entry;
}

}  // namespace septa::nn
