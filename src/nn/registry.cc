// The registered methods: one line each.
#include "nn/registry.h"

#include "nn/methods/backprop/backprop.h"
#include "nn/methods/ff/ff_method.h"
#include "nn/methods/scala/scala.h"
#include "nn/methods/uff/uff_method.h"
#include "nn/methods/vba/vba_method.h"

namespace septa::nn {

const std::vector<MethodEntry>& registry() {
  static const std::vector<MethodEntry> entries = {
      ff_method(),
      uff_method("uff-ae", CellKind::kAutoencoder),
      uff_method("uff-dae", CellKind::kDenoisingAutoencoder),
      uff_method("uff-conv", CellKind::kConvAutoencoder),
      backprop_method(),
      vba_method(),
      scala_method(),
      usnet_method(),
      separate_vit_method(),
  };
  return entries;
}

const MethodEntry& find_method(const std::string& name) {
  std::string known;
  for (const auto& entry : registry()) {
    if (entry.info.name == name) return entry;
    known += (known.empty() ? "" : ", ") + entry.info.name;
  }
  throw OptionError("unknown --method '" + name + "' (expected one of " + known + ")");
}

const std::vector<MethodInfo>& methods() {
  static const std::vector<MethodInfo> infos = [] {
    std::vector<MethodInfo> out;
    for (const auto& entry : registry()) out.push_back(entry.info);
    return out;
  }();
  return infos;
}

const MethodInfo& method(const std::string& name) { return find_method(name).info; }

Metadata run_metadata(const Options& options) {
  return {{kMethodKey, options.method()},
          {kOptionsKey, options.canonical()},
          {kSeedKey, std::to_string(options.seed())}};
}

}  // namespace septa::nn
