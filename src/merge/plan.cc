#include "merge/plan.h"

#include <cmath>
#include <set>
#include <sstream>

#include "septa/error.h"

namespace septa::merge {

using safetensors::Dtype;
using safetensors::TensorInfo;

namespace {

// mergekit's defaults: normalize on for linear and TIES, off for the others.
bool default_normalize(Method m) { return m == Method::kLinear || m == Method::kTies; }

std::optional<Dtype> output_dtype(const std::string& name) {
  if (name.empty()) return std::nullopt;
  if (name == "float32" || name == "fp32" || name == "F32") return Dtype::kF32;
  if (name == "float16" || name == "fp16" || name == "half" || name == "F16") return Dtype::kF16;
  if (name == "bfloat16" || name == "bf16" || name == "BF16") return Dtype::kBF16;
  throw OptionError("dtype '" + name + "' is not one of float32, float16, bfloat16");
}

const Source* open_source(Plan& plan, const std::string& spec) {
  auto& slot = plan.sources[spec];
  if (!slot) slot = Source::open(spec);
  return slot.get();
}

std::string model_label(const Plan& plan, const Input& input) {
  return "models[" + std::to_string(input.config_index) + "] (" + input.source->spec() + ")";
  (void)plan;
}

}  // namespace

Plan make_plan(const MergeConfig& config) {
  Plan plan;
  plan.config = config;
  const Method method = config.method;
  const std::string name = method_name(method);
  plan.normalize = config.normalize.value_or(default_normalize(method));
  plan.uses_base = method != Method::kLinear;
  if (config.models.empty()) throw OptionError("models: no model to merge");
  if (plan.uses_base && config.base_model.empty())
    throw OptionError("merge_method " + name + " needs base_model");
  const std::optional<Dtype> out_dtype = output_dtype(config.dtype);
  if (config.threads < 0) throw OptionError("threads must be >= 0 (0 = all cores), got " + std::to_string(config.threads));

  if (plan.uses_base) plan.base = open_source(plan, config.base_model);
  for (std::size_t i = 0; i < config.models.size(); ++i) {
    const ModelEntry& entry = config.models[i];
    const std::string where = "models[" + std::to_string(i) + "] (" + entry.model + ")";
    // Like mergekit, the base listed among the models contributes no task vector.
    if (plan.uses_base && entry.model == config.base_model) continue;
    Input input;
    input.config_index = i;
    const std::optional<double> weight = entry.weight ? entry.weight : config.weight;
    if (method != Method::kSlerp) {
      if (!weight) throw OptionError(where + ": parameter 'weight' is required by " + name);
      input.weight = static_cast<float>(*weight);
    }
    input.density = entry.density.value_or(config.density.value_or(1.0));
    if (!(input.density > 0.0 && input.density <= 1.0))
      throw OptionError(where + ": density must be in (0, 1], got " + std::to_string(input.density));
    input.source = open_source(plan, entry.model);
    plan.inputs.push_back(input);
  }
  if (method == Method::kSlerp && !config.t)
    throw OptionError("slerp needs parameter 't' (0 = base_model, 1 = the other model), as in mergekit");
  if (method == Method::kSlerp && plan.inputs.size() != 1)
    throw OptionError("slerp merges exactly two models: base_model and one other, found " +
                      std::to_string(plan.inputs.size()) + " besides the base");
  if (plan.inputs.empty() && method != Method::kLinear)
    throw OptionError(name + ": every model is the base model; nothing to merge");
  if (method == Method::kLinear && plan.normalize) {
    float total = 0;
    for (const auto& input : plan.inputs) total += input.weight;
    if (total == 0.0f) throw OptionError("linear with normalize: the weights sum to 0");
  }
  plan.reference = plan.base ? plan.base : plan.inputs.front().source;
  for (const auto& [spec, source] : plan.sources) plan.input_bytes += source->bytes();

  // Every input must hold exactly the reference's tensors, with the same shapes and dtypes.
  const Source& ref = *plan.reference;
  std::vector<const Source*> others;
  for (const auto& input : plan.inputs)
    if (input.source != &ref) others.push_back(input.source);
  for (const Source* other : others) {
    for (const TensorInfo* info : other->tensors())
      if (!ref.find(info->name))
        throw ModelError(other->file_of(info->name) + ": tensor '" + info->name + "' is not in the " +
                         (plan.base ? "base model " : "first model ") + ref.spec());
  }
  for (const TensorInfo* info : ref.tensors()) {
    TensorJob job;
    job.name = info->name;
    job.in_dtype = info->dtype;
    job.copy = !safetensors::is_float(info->dtype);
    job.out = {info->name, job.copy || !out_dtype ? info->dtype : *out_dtype, info->shape};
    for (const Source* other : others) {
      const TensorInfo* found = other->find(info->name);
      if (!found)
        throw ModelError(other->model().path() + ": tensor '" + info->name + "' is missing (present in " +
                         ref.file_of(info->name) + ")");
      if (found->shape != info->shape)
        throw ModelError(other->file_of(info->name) + ": tensor '" + info->name + "': shape " +
                         safetensors::shape_string(found->shape) + ", expected " +
                         safetensors::shape_string(info->shape) + " as in " + ref.file_of(info->name));
      if (found->dtype != info->dtype)
        throw ModelError(other->file_of(info->name) + ": tensor '" + info->name + "': dtype " +
                         safetensors::dtype_name(found->dtype) + ", expected " +
                         safetensors::dtype_name(info->dtype) + " as in " + ref.file_of(info->name));
    }
    if (method == Method::kTies && !job.copy) {
      const std::uint64_t numel = info->numel();
      for (const Input& input : plan.inputs) {
        // mergekit: k = int(density * numel), and it refuses k = 0 ("not gonna zero out the
        // whole tensor")
        const auto k = static_cast<std::uint64_t>(input.density * static_cast<double>(numel));
        if (input.density < 1.0 && k == 0 && numel > 0)
          throw OptionError(model_label(plan, input) + ": density " + std::to_string(input.density) +
                            " keeps int(density * " + std::to_string(numel) + ") = 0 entries of tensor '" +
                            info->name + "'; raise the density");
        job.keep.push_back(input.density >= 1.0 ? numel : k);
      }
    }
    plan.tensors.push_back(std::move(job));
  }
  return plan;
}

std::string describe(const Plan& plan) {
  std::ostringstream out;
  const MergeConfig& c = plan.config;
  out << "merge_method: " << method_name(c.method) << "\n";
  if (plan.base) out << "base_model: " << plan.base->spec() << "\n";
  out << "normalize: " << (plan.normalize ? "true" : "false");
  if (c.method != Method::kLinear && c.method != Method::kSlerp) out << "  lambda: " << c.lambda;
  if (c.method == Method::kSlerp) out << "  t: " << *c.t;
  if (c.method == Method::kDareLinear || c.method == Method::kDareTies) out << "  seed: " << c.seed;
  out << "\nmodels:\n";
  for (const Input& input : plan.inputs) {
    out << "  [" << input.config_index << "] " << input.source->spec();
    if (c.method != Method::kSlerp) out << "  weight " << input.weight;
    if (c.method != Method::kLinear && c.method != Method::kTaskArithmetic && c.method != Method::kSlerp)
      out << "  density " << input.density;
    if (input.source->adapted()) out << "  (LoRA: " << input.source->adapted() << " weights adapted)";
    out << "\n";
  }
  out << "tensors: " << plan.tensors.size() << " (input " << plan.input_bytes << " bytes)\n";
  for (const TensorJob& job : plan.tensors) {
    out << "  " << job.name << " " << safetensors::shape_string(job.out.shape) << " "
        << safetensors::dtype_name(job.in_dtype) << "->" << safetensors::dtype_name(job.out.dtype) << " ";
    if (job.copy) {
      out << "copy from " << plan.reference->spec() << " (not a floating type)\n";
      continue;
    }
    out << method_name(c.method);
    if (!job.keep.empty()) {
      out << " keep";
      for (const auto k : job.keep) out << " " << k;
      out << " of " << job.out.numel();
    }
    // The resolved per-model parameters, in the order of the models above.
    if (c.method != Method::kSlerp) {
      out << "  weights";
      for (const Input& input : plan.inputs) out << " " << input.weight;
    }
    if (c.method == Method::kTies || c.method == Method::kDareLinear || c.method == Method::kDareTies) {
      out << "  densities";
      for (const Input& input : plan.inputs) out << " " << input.density;
    }
    if (c.method == Method::kSlerp) out << "  t " << *c.t;
    out << "\n";
  }
  return out.str();
}

}  // namespace septa::merge
