// septa::nn checkpoints: safetensors files (tensors + string metadata) written atomically with a
// CRC-32 of the data section, which is verified on every load. Readable by Python's safetensors.
//
// Metadata every file carries:
//   septa.nn.format   "1"               format version
//   septa.nn.kind     "cell" | "head" | "state" (a stage's resumable training state) | ...
//   septa.nn.method   the method that wrote it ("uff-dae")
//   septa.nn.options  Options::canonical() of the run
//   septa.nn.seed     the run's seed
//   septa.nn.header_crc32  CRC-32 of the other metadata and the tensor table (names, dtypes,
//                          shapes, offsets); safetensors' septa.checksum covers the data bytes,
//                          so together every byte of the file is checked
// plus kind-specific keys (a cell's spec, a state's epoch).
#pragma once
#include <type_traits>
#include <sstream>

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace septa::nn {

using Metadata = std::map<std::string, std::string>;

inline constexpr const char* kFormatKey = "septa.nn.format";
inline constexpr const char* kFormatVersion = "1";
inline constexpr const char* kKindKey = "septa.nn.kind";
inline constexpr const char* kMethodKey = "septa.nn.method";
inline constexpr const char* kOptionsKey = "septa.nn.options";
inline constexpr const char* kSeedKey = "septa.nn.seed";
inline constexpr const char* kHeaderCrcKey = "septa.nn.header_crc32";

// Tensors to save, by name, in order; the metadata to go with them.
class CheckpointWriter {
 public:
  CheckpointWriter();
  ~CheckpointWriter();
  // Copies `tensor` to the CPU; float32, float64, int64 and uint8 tensors.
  void add(const std::string& name, const torch::Tensor& tensor);
  // Every parameter and buffer of `module` as "<prefix><name>".
  void add_module(const std::string& prefix, torch::nn::Module& module);
  // Adam / AdamW state of each parameter of `module` that has one: "<prefix><i>.step",
  // ".exp_avg", ".exp_avg_sq" (i = position in module.parameters()).
  void add_optimizer(const std::string& prefix, torch::optim::Optimizer& optimizer,
                     torch::nn::Module& module);
  void set(const std::string& key, const std::string& value);
  // Temporary file, fsync, rename; checksummed. IoError naming `path` on failure.
  void write(const std::string& path) const;

 private:
  struct Impl;  // the safetensors writer and the tensor table (kept out of this header)
  std::unique_ptr<Impl> impl_;
};

// A checkpoint opened for reading: format version and checksum verified.
class Checkpoint {
 public:
  // IoError when `path` is missing; ModelError when it is truncated, corrupt (checksum), has no
  // checksum, is not a septa nn file, is of another format version, or its kind is not `kind`.
  static Checkpoint open(const std::string& path, const std::string& kind);
  Checkpoint(Checkpoint&&) noexcept;
  ~Checkpoint();

  const std::string& path() const;
  const Metadata& metadata() const;
  // The metadata value; ModelError naming the file and key when absent.
  const std::string& get(const std::string& key) const;
  // ModelError unless the file was written by `method`.
  void expect_method(const std::string& method) const;
  bool has(const std::string& name) const;
  // The tensor (a CPU copy); ModelError when absent or not of `dtype` and `shape`.
  torch::Tensor tensor(const std::string& name, torch::ScalarType dtype,
                       const std::vector<int64_t>& shape) const;
  // Copies "<prefix><name>" into every parameter and buffer of `module` (any device); ModelError
  // naming the tensor for a missing one or a shape mismatch, or for tensors the module lacks.
  void load_module(const std::string& prefix, torch::nn::Module& module) const;
  // The inverse of CheckpointWriter::add_optimizer.
  void load_optimizer(const std::string& prefix, torch::optim::Optimizer& optimizer,
                      torch::nn::Module& module) const;

 private:
  struct Impl;  // the safetensors reader
  explicit Checkpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A file name inside a run directory: "cell 0" -> DIR/cell_0.safetensors.
std::string part_path(const std::string& dir, const std::string& part);
// The resumable state of a stage: DIR/<stage>.state.safetensors.
std::string state_path(const std::string& dir, const std::string& stage);

// True when both modules hold bit-identical parameters and buffers (same names, shapes, bytes).
bool same_weights(torch::nn::Module& a, torch::nn::Module& b);

// Optimizer::state()'s key of a parameter: its TensorImpl's address printed as a string in
// libtorch 1.x (Debian's), the address itself from libtorch 2.0 on (PyTorch's CUDA builds).
template <typename States>
typename std::decay_t<States>::key_type state_key(const torch::Tensor& parameter) {
  using Key = typename std::decay_t<States>::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << parameter.unsafeGetTensorImpl();
    return text.str();
  } else {
    return parameter.unsafeGetTensorImpl();
  }
}

}  // namespace septa::nn
