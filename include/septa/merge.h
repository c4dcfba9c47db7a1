// septa merge: merging separately trained checkpoints (safetensors), streaming tensor by tensor.
//
// Methods as mergekit (arcee-ai/mergekit) defines them; task vectors d_t = theta_t - theta_base:
//   linear           sum_t w_t theta_t            (/ sum_t w_t when normalize, the default)
//   task_arithmetic  base + lambda * sum_t w_t d_t (/ sum_t w_t when normalize; default off)
//   ties             trim each d_t to its top k = int(density * numel) magnitudes, elect a sign per
//                    entry (+ where sum_t w_t d_t >= 0), keep entries agreeing with it, divide by
//                    the kept weights (normalize, default on), base + lambda * mixed
//   dare_linear      keep each entry of d_t with probability density, rescale by 1/density,
//                    then task arithmetic
//   dare_ties        the same drop-and-rescale, then TIES's sign election
//   slerp            spherical interpolation at t between the base and the one other model
// A model is a .safetensors file, a directory with model.safetensors or shards plus
// model.safetensors.index.json, or "BASE+ADAPTER": BASE with a PEFT LoRA adapter merged in
// (delta = alpha / r * B A per adapted weight).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace septa::merge {

enum class Method { kLinear, kTaskArithmetic, kTies, kDareLinear, kDareTies, kSlerp };

// "ties" -> kTies; OptionError naming the known methods otherwise.
Method parse_method(const std::string& name);
const char* method_name(Method method);

struct ModelEntry {
  std::string model;               // path, or "BASE+ADAPTER"
  std::optional<double> weight;    // falls back to MergeConfig::weight
  std::optional<double> density;   // falls back to MergeConfig::density, then 1
};

struct MergeConfig {
  Method method = Method::kLinear;
  std::string base_model;          // required by all methods except linear
  std::vector<ModelEntry> models;
  std::optional<bool> normalize;   // default per method (linear, ties: on)
  double lambda = 1.0;             // scales the mixed task vector
  std::optional<double> weight;    // global defaults of the per-model parameters
  std::optional<double> density;
  std::optional<double> t;         // slerp (required, as in mergekit): 0 = base, 1 = the other model
  std::string dtype;               // output dtype: float32, float16, bfloat16; "" = the base's
  std::uint64_t seed = 0;          // DARE's random drops
  int threads = 0;                 // 0 = hardware concurrency
  std::uint64_t out_shard_size = 0;  // bytes per output shard; 0 = one model.safetensors
  bool sync = true;                // fsync each output file before renaming it into place
  std::string source;              // where the config came from, for messages
};

// Reads mergekit's raw-checkpoint YAML subset (merge_method, base_model, models[{model,
// parameters{weight, density}}], parameters{normalize, lambda, weight, density, t}, dtype,
// out_dtype) plus septa's seed. Throws septa::FormatError "<file>:<line>: ..." for bad YAML,
// unknown keys or ill-typed values.
MergeConfig load_config(const std::string& path);
MergeConfig parse_config(const std::string& yaml, const std::string& label);

// "5GB", "500MiB", "1000000" -> bytes; OptionError naming `option` otherwise.
std::uint64_t parse_size(const std::string& text, const std::string& option);

struct MergeProgress {
  std::size_t tensors_done = 0;
  std::size_t tensors_total = 0;
  std::uint64_t bytes_written = 0;
  double seconds = 0;
};

struct MergeResult {
  std::vector<std::string> files;  // written into the output directory (empty on a dry run)
  std::size_t tensors = 0;
  std::uint64_t input_bytes = 0;
  std::uint64_t output_bytes = 0;
  std::string plan;                // the resolved per-tensor plan (dry run only)
};

// Validates everything (models open, every tensor present in every model with the same shape
// and dtype, parameters in range) before writing anything; then streams the merge into
// `out_dir` (created if needed). Errors: septa::ModelError / FormatError / IoError /
// OptionError naming the file, the tensor and what was expected versus found; nothing is left
// in `out_dir` when one is thrown. `progress` (optional) returning false cancels
// (septa::Cancelled).
MergeResult run_merge(const MergeConfig& config, const std::string& out_dir, bool dry_run = false,
                      const std::function<bool(const MergeProgress&)>& progress = {});

}  // namespace septa::merge
