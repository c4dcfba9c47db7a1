// The resolved merge: which models play which role, and per tensor what happens to it.
// Everything the merge can refuse is refused here, before any output exists.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "merge/source.h"
#include "septa/merge.h"

namespace septa::merge {

struct Input {
  const Source* source = nullptr;
  std::size_t config_index = 0;  // position in MergeConfig::models (DARE's stream)
  float weight = 1.0f;
  double density = 1.0;
};

struct TensorJob {
  std::string name;
  safetensors::TensorSpec out;       // name, output dtype, shape
  safetensors::Dtype in_dtype = safetensors::Dtype::kF32;
  bool copy = false;                 // non-float tensor: copied from the reference model
  std::vector<std::size_t> keep;     // TIES: k = int(density * numel) per input
};

struct Plan {
  MergeConfig config;
  bool normalize = false;
  bool uses_base = false;            // task vectors against the base, or slerp from it
  const Source* base = nullptr;      // null for linear
  const Source* reference = nullptr; // whose tensor list and order the output follows
  std::vector<Input> inputs;         // without the base
  std::vector<TensorJob> tensors;
  std::map<std::string, std::unique_ptr<Source>> sources;  // by spec, each opened once
  std::uint64_t input_bytes = 0;
};

Plan make_plan(const MergeConfig& config);
// The --dry-run text: roles, parameters, then one line per tensor.
std::string describe(const Plan& plan);

}  // namespace septa::merge
