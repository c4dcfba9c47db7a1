// A model as the merge reads it: a safetensors model (file, directory, shards) or a base model
// with a PEFT LoRA adapter merged in ("BASE+ADAPTER", mergekit's syntax).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "safetensors/safetensors.h"

namespace septa::merge {

// One adapted weight of a LoRA adapter: W' = W + scale * B A  (or its transpose).
struct LoraPair {
  const safetensors::TensorInfo* a = nullptr;  // [r][in]   (embeddings: [r][rows])
  const safetensors::TensorInfo* b = nullptr;  // [out][r]  (embeddings: [cols][r])
  double scale = 1.0;                          // alpha / r, or alpha / sqrt(r) with rsLoRA
  bool transpose = false;                      // delta = (B A)^T: fan_in_fan_out, embeddings
};

class Source {
 public:
  // `spec` is a path, or "BASE+ADAPTER" where ADAPTER is a PEFT directory
  // (adapter_model.safetensors + adapter_config.json).
  static std::unique_ptr<Source> open(const std::string& spec);

  const std::string& spec() const { return spec_; }
  const safetensors::Model& model() const { return model_; }
  // The tensors, in file order (those of the base for BASE+ADAPTER).
  const std::vector<const safetensors::TensorInfo*>& tensors() const { return model_.tensors(); }
  const safetensors::TensorInfo* find(const std::string& name) const { return model_.find(name); }
  // The file that holds `name` (the base's for adapted weights), for messages.
  std::string file_of(const std::string& name) const;
  // Tensor `name` as float32 (LoRA delta added), into out[numel].
  void load_f32(const std::string& name, float* out) const;
  // Drops the tensor's pages from resident memory (they stay in the page cache).
  void release(const std::string& name) const;
  // Number of weights an adapter changes (0 without one).
  std::size_t adapted() const { return lora_.size(); }
  const LoraPair* lora(const std::string& name) const;
  std::uint64_t bytes() const;

 private:
  std::string spec_;
  safetensors::Model model_;
  std::unique_ptr<safetensors::Reader> adapter_;
  std::string adapter_path_;
  std::map<std::string, LoraPair> lora_;  // by base tensor name
};

}  // namespace septa::merge
