#include "merge/source.h"

#include <sys/stat.h>

#include <cmath>

#include "safetensors/file_io.h"
#include "safetensors/json.h"
#include "septa/error.h"

namespace septa::merge {

using safetensors::TensorInfo;

namespace {

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// PEFT names: "base_model.model.<module>.lora_A.weight" adapts "<module>.weight";
// "base_model.model.<module>.lora_embedding_A" adapts "<module>.weight" (transposed delta).
struct LoraName {
  std::string target;
  char which = 0;  // 'A' or 'B'
  bool embedding = false;
};

bool parse_lora_name(const std::string& name, LoraName& out) {
  std::string rest = name;
  const std::string prefix = "base_model.model.";
  if (rest.compare(0, prefix.size(), prefix) == 0) rest = rest.substr(prefix.size());
  for (const char which : {'A', 'B'}) {
    const std::string linear = std::string(".lora_") + which + ".weight";
    const std::string embedding = std::string(".lora_embedding_") + which;
    if (rest.size() > linear.size() && rest.compare(rest.size() - linear.size(), linear.size(), linear) == 0) {
      out = {rest.substr(0, rest.size() - linear.size()) + ".weight", which, false};
      return true;
    }
    if (rest.size() > embedding.size() &&
        rest.compare(rest.size() - embedding.size(), embedding.size(), embedding) == 0) {
      out = {rest.substr(0, rest.size() - embedding.size()) + ".weight", which, true};
      return true;
    }
  }
  return false;
}

}  // namespace

std::unique_ptr<Source> Source::open(const std::string& spec) {
  auto source = std::make_unique<Source>();
  source->spec_ = spec;
  // "BASE+ADAPTER": split at the first '+' whose left side exists (paths may contain '+').
  std::string base = spec, adapter;
  if (!file_exists(spec))
    for (std::size_t plus = spec.find('+'); plus != std::string::npos; plus = spec.find('+', plus + 1))
      if (plus > 0 && file_exists(spec.substr(0, plus))) {
        base = spec.substr(0, plus);
        adapter = spec.substr(plus + 1);
        break;
      }
  source->model_ = safetensors::Model::open(base);
  if (adapter.empty()) return source;

  std::string weights = adapter, config_path;
  struct stat st;
  if (::stat(adapter.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    weights = adapter + "/adapter_model.safetensors";
    config_path = adapter + "/adapter_config.json";
  } else {
    throw IoError(adapter + ": a LoRA adapter must be a PEFT directory (adapter_model.safetensors and "
                  "adapter_config.json)");
  }
  source->adapter_path_ = weights;
  source->adapter_ = std::make_unique<safetensors::Reader>(safetensors::Reader::open(weights));
  const safetensors::json::Value config =
      safetensors::json::parse(safetensors::read_text_file(config_path), config_path);
  const auto* alpha = config.find("lora_alpha");
  if (!alpha || alpha->kind != safetensors::json::Value::Kind::kNumber)
    throw ModelError(config_path + ": no numeric \"lora_alpha\"");
  const double lora_alpha = std::stod(alpha->text);
  bool rslora = false, fan_in_fan_out = false;
  if (const auto* v = config.find("use_rslora")) rslora = v->kind == safetensors::json::Value::Kind::kBool && v->boolean;
  if (const auto* v = config.find("fan_in_fan_out"))
    fan_in_fan_out = v->kind == safetensors::json::Value::Kind::kBool && v->boolean;
  if (const auto* v = config.find("alpha_pattern"))
    if (v->kind == safetensors::json::Value::Kind::kObject && !v->members.empty())
      throw ModelError(config_path + ": \"alpha_pattern\" (per-module alpha) is not supported");

  std::map<std::string, std::pair<const TensorInfo*, const TensorInfo*>> pairs;
  std::map<std::string, bool> embedding;
  for (const TensorInfo& info : source->adapter_->tensors()) {
    LoraName parsed;
    if (!parse_lora_name(info.name, parsed))
      throw ModelError(weights + ": tensor '" + info.name +
                       "' is not a LoRA factor (.lora_A.weight / .lora_B.weight); other adapter "
                       "tensors (modules_to_save, DoRA magnitudes) are not supported");
    auto& pair = pairs[parsed.target];
    (parsed.which == 'A' ? pair.first : pair.second) = &info;
    embedding[parsed.target] = parsed.embedding;
  }
  for (const auto& [target, pair] : pairs) {
    const std::string where = weights + ": LoRA for '" + target + "': ";
    if (!pair.first || !pair.second) throw ModelError(where + "lora_" + (pair.first ? "B" : "A") + " is missing");
    const TensorInfo* w = source->model_.find(target);
    if (!w) throw ModelError(where + "the base model " + base + " has no tensor '" + target + "'");
    const TensorInfo& a = *pair.first;
    const TensorInfo& b = *pair.second;
    if (a.shape.size() != 2 || b.shape.size() != 2 || w->shape.size() != 2 || a.shape[0] != b.shape[1])
      throw ModelError(where + "lora_A " + safetensors::shape_string(a.shape) + " and lora_B " +
                       safetensors::shape_string(b.shape) + " are not [r, in] and [out, r]");
    if (!safetensors::is_float(a.dtype) || !safetensors::is_float(b.dtype))
      throw ModelError(where + "LoRA factors must be floating point, found " + safetensors::dtype_name(a.dtype));
    LoraPair lora;
    lora.a = &a;
    lora.b = &b;
    lora.transpose = fan_in_fan_out || embedding[target];
    const std::int64_t r = a.shape[0];
    lora.scale = r == 0 ? 0.0 : rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / r;
    const std::vector<std::int64_t> delta_shape =
        lora.transpose ? std::vector<std::int64_t>{a.shape[1], b.shape[0]} : std::vector<std::int64_t>{b.shape[0], a.shape[1]};
    if (delta_shape != w->shape)
      throw ModelError(where + "B A has shape " + safetensors::shape_string(delta_shape) + ", the base weight " +
                       safetensors::shape_string(w->shape));
    source->lora_[target] = lora;
  }
  return source;
}

const LoraPair* Source::lora(const std::string& name) const {
  const auto it = lora_.find(name);
  return it == lora_.end() ? nullptr : &it->second;
}

std::string Source::file_of(const std::string& name) const {
  return model_.find(name) ? model_.reader_of(name).path() : model_.path();
}

// W'[o][i] = W[o][i] + scale * sum_r B[o][r] A[r][i]; transposed: W'[i][o] += the same.
void Source::load_f32(const std::string& name, float* out) const {
  const safetensors::Reader& reader = model_.reader_of(name);
  reader.read_f32(reader.tensor(name), out);
  const LoraPair* lora = this->lora(name);
  if (!lora) return;
  const std::size_t r = static_cast<std::size_t>(lora->a->shape[0]);
  const std::size_t in = static_cast<std::size_t>(lora->a->shape[1]);
  const std::size_t rows = static_cast<std::size_t>(lora->b->shape[0]);
  std::vector<float> a(r * in), b(rows * r);  // [r][in], [rows][r]
  adapter_->read_f32(*lora->a, a.data());
  adapter_->read_f32(*lora->b, b.data());
  std::vector<float> row(in);
  for (std::size_t o = 0; o < rows; ++o) {
    std::fill(row.begin(), row.end(), 0.0f);
    for (std::size_t k = 0; k < r; ++k) {
      const float coefficient = b[o * r + k];
      const float* a_row = a.data() + k * in;
      for (std::size_t i = 0; i < in; ++i) row[i] += coefficient * a_row[i];
    }
    const float scale = static_cast<float>(lora->scale);
    if (!lora->transpose) {
      for (std::size_t i = 0; i < in; ++i) out[o * in + i] += scale * row[i];
    } else {
      for (std::size_t i = 0; i < in; ++i) out[i * rows + o] += scale * row[i];
    }
  }
}

void Source::release(const std::string& name) const {
  const safetensors::Reader& reader = model_.reader_of(name);
  reader.release(reader.tensor(name));
}

std::uint64_t Source::bytes() const {
  return model_.total_bytes() + (adapter_ ? adapter_->data_bytes() : 0);
}

}  // namespace septa::merge
