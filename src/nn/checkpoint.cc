// Checkpoints as safetensors files (format in safetensors/safetensors.h).
#include "nn/checkpoint.h"

#include <sstream>
#include <type_traits>

#include <c10/util/string_utils.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "safetensors/safetensors.h"
#include "septa/error.h"

namespace septa::nn {

struct CheckpointWriter::Impl {
  safetensors::Writer writer;
  Metadata metadata;
  std::vector<safetensors::TensorInfo> table;  // what the header will list, in order
};

struct Checkpoint::Impl {
  safetensors::Reader reader;
};

namespace {

safetensors::Dtype to_dtype(torch::ScalarType type, const std::string& name) {
  switch (type) {
    case torch::kFloat32: return safetensors::Dtype::kF32;
    case torch::kFloat64: return safetensors::Dtype::kF64;
    case torch::kInt64: return safetensors::Dtype::kI64;
    case torch::kUInt8: return safetensors::Dtype::kU8;
    default: throw InternalError("checkpoint tensor '" + name + "' has an unsupported dtype");
  }
}

std::string shape_text(const std::vector<int64_t>& shape) { return safetensors::shape_string(shape); }

std::string file_name(std::string part) {
  for (char& c : part)
    if (c == ' ') c = '_';
  return part;
}

// CRC-32 of the metadata (all but the two checksums) and the tensor table, as 8 hex digits.
std::string header_crc(const Metadata& metadata, const std::vector<safetensors::TensorInfo>& table) {
  std::string text;
  for (const auto& [key, value] : metadata) {
    if (key == kHeaderCrcKey || key == safetensors::kChecksumKey) continue;
    text += key + '\0' + value + '\0';
  }
  for (const auto& info : table)
    text += info.name + '\0' + safetensors::dtype_name(info.dtype) + shape_text(info.shape) +
            std::to_string(info.begin) + ',' + std::to_string(info.end) + '\0';
  const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(text.data()),
                          static_cast<uInt>(text.size()));
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08lx", static_cast<unsigned long>(crc));
  return hex;
}

// Adam and AdamW keep their state in different types with the same fields.
template <typename State>
bool add_adam_state(torch::optim::OptimizerParamState* base, CheckpointWriter& writer,
                    const std::string& name) {
  auto* state = dynamic_cast<State*>(base);
  if (!state) return false;
  writer.add(name + ".step", torch::tensor({state->step()}, torch::kInt64));
  writer.add(name + ".exp_avg", state->exp_avg());
  writer.add(name + ".exp_avg_sq", state->exp_avg_sq());
  return true;
}

template <typename State>
std::unique_ptr<torch::optim::OptimizerParamState> make_adam_state(const Checkpoint& file,
                                                                   const std::string& name,
                                                                   const torch::Tensor& param) {
  auto state = std::make_unique<State>();
  const std::vector<int64_t> shape(param.sizes().begin(), param.sizes().end());
  state->step(file.tensor(name + ".step", torch::kInt64, {1}).item<int64_t>());
  state->exp_avg(file.tensor(name + ".exp_avg", param.scalar_type(), shape).to(param.device()));
  state->exp_avg_sq(
      file.tensor(name + ".exp_avg_sq", param.scalar_type(), shape).to(param.device()));
  return state;
}

}  // namespace

void CheckpointWriter::add(const std::string& name, const torch::Tensor& tensor) {
  const torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  safetensors::TensorInfo info;
  info.name = name;
  info.dtype = to_dtype(cpu.scalar_type(), name);
  info.shape.assign(cpu.sizes().begin(), cpu.sizes().end());
  info.begin = impl_->table.empty() ? 0 : impl_->table.back().end;
  info.end = info.begin + static_cast<uint64_t>(cpu.numel()) * cpu.element_size();
  impl_->writer.add(name, info.dtype, info.shape, cpu.data_ptr(), info.end - info.begin);
  impl_->table.push_back(info);
}

void CheckpointWriter::add_module(const std::string& prefix, torch::nn::Module& module) {
  for (const auto& item : module.named_parameters(/*recurse=*/true)) add(prefix + item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true)) add(prefix + item.key(), item.value());
}

void CheckpointWriter::add_optimizer(const std::string& prefix, torch::optim::Optimizer& optimizer,
                                     torch::nn::Module& module) {
  const auto params = module.parameters();
  auto& states = optimizer.state();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto it = states.find(state_key<decltype(states)>(params[i]));
    if (it == states.end()) continue;
    const std::string name = prefix + std::to_string(i);
    if (!add_adam_state<torch::optim::AdamWParamState>(it->second.get(), *this, name) &&
        !add_adam_state<torch::optim::AdamParamState>(it->second.get(), *this, name))
      throw InternalError("checkpoints save only Adam and AdamW state");
  }
}

CheckpointWriter::CheckpointWriter() : impl_(std::make_unique<Impl>()) {
  impl_->metadata[kFormatKey] = kFormatVersion;
}

CheckpointWriter::~CheckpointWriter() = default;

void CheckpointWriter::set(const std::string& key, const std::string& value) {
  impl_->metadata[key] = value;
}

void CheckpointWriter::write(const std::string& path) const {
  safetensors::Writer writer = impl_->writer;
  for (const auto& [key, value] : impl_->metadata) writer.set_metadata(key, value);
  writer.set_metadata(kHeaderCrcKey, header_crc(impl_->metadata, impl_->table));
  writer.write(path);
}

Checkpoint Checkpoint::open(const std::string& path, const std::string& kind) {
  if (!std::ifstream(path).good()) throw IoError(path + ": no such checkpoint file");
  safetensors::Reader reader = safetensors::Reader::open(path);
  if (!reader.verify_checksum())
    throw ModelError(path + ": no septa.checksum in the metadata (not a septa nn checkpoint)");
  const auto& meta = reader.metadata();
  const auto crc = meta.find(kHeaderCrcKey);
  if (crc == meta.end()) throw ModelError(path + ": not a septa nn checkpoint (no " + kHeaderCrcKey + ")");
  if (crc->second != header_crc(meta, reader.tensors()))
    throw ModelError(path + ": corrupt header (metadata or tensor table fail their CRC-32)");
  const auto format = meta.find(kFormatKey);
  if (format == meta.end()) throw ModelError(path + ": not a septa nn checkpoint (no " + kFormatKey + ")");
  if (format->second != kFormatVersion)
    throw ModelError(path + ": checkpoint format version " + format->second + ", this septa reads " +
                     kFormatVersion);
  const auto found = meta.find(kKindKey);
  if (found == meta.end() || found->second != kind)
    throw ModelError(path + ": a " + (found == meta.end() ? std::string("?") : found->second) +
                     " file where a " + kind + " file was expected");
  return Checkpoint(std::make_unique<Impl>(Impl{std::move(reader)}));
}

Checkpoint::Checkpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

const std::string& Checkpoint::path() const { return impl_->reader.path(); }
const Metadata& Checkpoint::metadata() const { return impl_->reader.metadata(); }
bool Checkpoint::has(const std::string& name) const { return impl_->reader.find(name) != nullptr; }

const std::string& Checkpoint::get(const std::string& key) const {
  const auto it = metadata().find(key);
  if (it == metadata().end()) throw ModelError(path() + ": metadata has no '" + key + "'");
  return it->second;
}

void Checkpoint::expect_method(const std::string& method) const {
  const std::string& written = get(kMethodKey);
  if (written != method)
    throw ModelError(path() + ": written by method " + written + ", not " + method);
}

torch::Tensor Checkpoint::tensor(const std::string& name, torch::ScalarType dtype,
                                 const std::vector<int64_t>& shape) const {
  const safetensors::TensorInfo* info = impl_->reader.find(name);
  if (!info) throw ModelError(path() + ": no tensor '" + name + "'");
  if (info->dtype != to_dtype(dtype, name) || info->shape != shape)
    throw ModelError(path() + ": tensor '" + name + "' is " + safetensors::dtype_name(info->dtype) +
                     " " + shape_text(info->shape) + ", expected " +
                     safetensors::dtype_name(to_dtype(dtype, name)) + " " + shape_text(shape));
  torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  std::memcpy(out.data_ptr(), impl_->reader.data(*info), info->nbytes());
  return out;
}

void Checkpoint::load_module(const std::string& prefix, torch::nn::Module& module) const {
  torch::NoGradGuard no_grad;
  size_t expected = 0;
  auto load = [&](const std::string& name, torch::Tensor& target) {
    const std::vector<int64_t> shape(target.sizes().begin(), target.sizes().end());
    target.copy_(tensor(prefix + name, target.scalar_type(), shape));
    ++expected;
  };
  for (auto& item : module.named_parameters(/*recurse=*/true)) load(item.key(), item.value());
  for (auto& item : module.named_buffers(/*recurse=*/true)) load(item.key(), item.value());
  size_t present = 0;
  for (const auto& info : impl_->reader.tensors())
    if (info.name.rfind(prefix, 0) == 0) ++present;
  if (present != expected)
    throw ModelError(path() + ": " + std::to_string(present) + " tensors under '" + prefix +
                     "' where the module has " + std::to_string(expected));
}

void Checkpoint::load_optimizer(const std::string& prefix, torch::optim::Optimizer& optimizer,
                                torch::nn::Module& module) const {
  const auto params = module.parameters();
  auto& states = optimizer.state();
  const bool adamw = dynamic_cast<torch::optim::AdamW*>(&optimizer) != nullptr;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string name = prefix + std::to_string(i);
    if (!has(name + ".step")) continue;
    states[state_key<decltype(states)>(params[i])] =
        adamw ? make_adam_state<torch::optim::AdamWParamState>(*this, name, params[i])
              : make_adam_state<torch::optim::AdamParamState>(*this, name, params[i]);
  }
}

std::string part_path(const std::string& dir, const std::string& part) {
  return dir + "/" + file_name(part) + ".safetensors";
}

std::string state_path(const std::string& dir, const std::string& stage) {
  return dir + "/" + file_name(stage) + ".state.safetensors";
}

bool same_weights(torch::nn::Module& a, torch::nn::Module& b) {
  auto tensors = [](torch::nn::Module& m) {
    auto all = m.named_parameters(/*recurse=*/true);
    for (const auto& item : m.named_buffers(/*recurse=*/true)) all.insert(item.key(), item.value());
    return all;
  };
  const auto ta = tensors(a);
  const auto tb = tensors(b);
  if (ta.size() != tb.size()) return false;
  for (const auto& item : ta) {
    const torch::Tensor* other = tb.find(item.key());
    if (!other || !item.value().sizes().equals(other->sizes()) ||
        item.value().scalar_type() != other->scalar_type())
      return false;
    const torch::Tensor x = item.value().detach().to(torch::kCPU).contiguous();
    const torch::Tensor y = other->detach().to(torch::kCPU).contiguous();
    if (std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) != 0) return false;
  }
  return true;
}

}  // namespace septa::nn
