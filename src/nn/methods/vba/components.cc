// The components' networks, densities, samplers and checkpoints.
#include "nn/methods/vba/components.h"

#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "nn/methods/vba/densities.h"
#include "septa/error.h"

namespace septa::nn::vba {
namespace {

constexpr double kMinLogStd = -9.0;  // std >= 1.2e-4: keeps the MLP densities finite
constexpr double kMaxLogStd = 5.0;

std::string family_text(Family f) { return f == Family::kGaussian ? "gaussian" : "bernoulli"; }

std::map<std::string, std::string> fields(const std::string& text) {
  std::map<std::string, std::string> out;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ';')) {
    const size_t eq = item.find('=');
    if (eq != std::string::npos) out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

int64_t field(const std::map<std::string, std::string>& f, const std::string& key,
              const std::string& text) {
  const auto it = f.find(key);
  try {
    if (it != f.end()) return std::stoll(it->second);
  } catch (const std::exception&) {
  }
  throw ModelError("malformed component spec '" + text + "' (" + key + ")");
}

Family family_field(const std::map<std::string, std::string>& f, const std::string& text) {
  const auto it = f.find("family");
  if (it != f.end() && it->second == "gaussian") return Family::kGaussian;
  if (it != f.end() && it->second == "bernoulli") return Family::kBernoulli;
  throw ModelError("malformed component spec '" + text + "' (family)");
}

}  // namespace

torch::Generator cpu_generator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

torch::Tensor standard_normal(const std::vector<int64_t>& shape, const torch::Tensor& like,
                              torch::Generator generator) {
  return torch::randn(shape, generator, torch::TensorOptions().dtype(like.scalar_type()))
      .to(like.device());
}

torch::Tensor uniform(const std::vector<int64_t>& shape, const torch::Tensor& like,
                      torch::Generator generator) {
  return torch::rand(shape, generator, torch::TensorOptions().dtype(like.scalar_type()))
      .to(like.device());
}

std::string ConditionalSpec::text() const {
  std::string out = "inputs=" + std::to_string(inputs) + ";outputs=" + std::to_string(outputs) +
                    ";hidden=" + std::to_string(hidden) + ";family=" + family_text(family);
  if (latent > 0) out += ";latent=" + std::to_string(latent) + ";iwae_k=" + std::to_string(iwae_k);
  return out;
}

ConditionalSpec ConditionalSpec::parse(const std::string& text) {
  const auto f = fields(text);
  ConditionalSpec spec;
  spec.inputs = field(f, "inputs", text);
  spec.outputs = field(f, "outputs", text);
  spec.hidden = field(f, "hidden", text);
  spec.family = family_field(f, text);
  if (f.count("latent")) {
    spec.latent = field(f, "latent", text);
    spec.iwae_k = field(f, "iwae_k", text);
  }
  if (spec.inputs < 1 || spec.outputs < 1 || spec.hidden < 0 || spec.latent < 0 || spec.iwae_k < 1)
    throw ModelError("component spec '" + text + "' out of range");
  return spec;
}

ConditionalImpl::ConditionalImpl(const ConditionalSpec& s) : spec(s) {
  if (spec.latent > 0) {
    decoder = register_module("decoder", std::make_shared<ConditionalImpl>(ConditionalSpec{
                                             spec.inputs + spec.latent, spec.outputs, spec.hidden, spec.family}));
    posterior = register_module("posterior", std::make_shared<ConditionalImpl>(ConditionalSpec{
                                                 spec.inputs + spec.outputs, spec.latent, spec.hidden,
                                                 Family::kGaussian}));
    return;
  }
  const bool gaussian_mlp = spec.family == Family::kGaussian && spec.hidden > 0;
  const int64_t width = gaussian_mlp ? 2 * spec.outputs : spec.outputs;
  net = torch::nn::Sequential();
  if (spec.hidden == 0) {
    net->push_back(torch::nn::Linear(spec.inputs, width));
  } else {
    net->push_back(torch::nn::Linear(spec.inputs, spec.hidden));
    net->push_back(torch::nn::ReLU());
    net->push_back(torch::nn::Linear(spec.hidden, spec.hidden));
    net->push_back(torch::nn::ReLU());
    net->push_back(torch::nn::Linear(spec.hidden, width));
  }
  register_module("net", net);
  if (spec.family == Family::kGaussian && spec.hidden == 0)
    log_std = register_parameter("log_std", torch::zeros({spec.outputs}));
  in_shift = register_buffer("in_shift", torch::zeros({spec.inputs}));
  in_scale = register_buffer("in_scale", torch::ones({spec.inputs}));
  out_shift = register_buffer("out_shift", torch::zeros({spec.outputs}));
  out_scale = register_buffer("out_scale", torch::ones({spec.outputs}));
}

namespace {

// Column means and standard deviations of data [N][F] (std 1 for nearly constant columns).
std::pair<torch::Tensor, torch::Tensor> moments(const torch::Tensor& data) {
  const torch::Tensor mean = data.mean(0);
  const torch::Tensor sd = data.std(0, /*unbiased=*/false);
  return {mean, torch::where(sd > 1e-3, sd, torch::ones_like(sd))};
}

}  // namespace

void ConditionalImpl::standardise(const torch::Tensor& in, const torch::Tensor& out) {
  torch::NoGradGuard no_grad;
  if (spec.latent > 0) {
    // The decoder's u columns keep shift 0, scale 1 (u ~ N(0, I) already).
    if (in.defined()) {
      const torch::Tensor u = torch::zeros({in.size(0), spec.latent}, in.options());
      decoder->standardise(torch::cat({in, u}, 1), out);
      if (out.defined()) posterior->standardise(torch::cat({in, out.to(in.scalar_type())}, 1), torch::Tensor());
    } else {
      decoder->standardise(torch::Tensor(), out);
    }
    return;
  }
  if (in.defined()) {
    const auto [mean, sd] = moments(in.to(in_shift.scalar_type()));
    in_shift.copy_(mean);
    in_scale.copy_(sd);
  }
  if (out.defined() && spec.family == Family::kGaussian) {
    const auto [mean, sd] = moments(out.to(out_shift.scalar_type()));
    out_shift.copy_(mean);
    out_scale.copy_(sd);
  }
}

std::pair<torch::Tensor, torch::Tensor> ConditionalImpl::params(const torch::Tensor& in) {
  if (spec.latent > 0) throw InternalError("a conditional VAE has no closed-form output parameters");
  const torch::Tensor out = net->forward((in - in_shift) / in_scale);  // [..][D']
  if (spec.family == Family::kBernoulli) return {out, torch::Tensor()};
  if (spec.hidden == 0)
    return {out_shift + out_scale * out,
            (log_std.clamp(kMinLogStd, kMaxLogStd) + out_scale.log()).expand_as(out)};
  const auto halves = out.chunk(2, /*dim=*/-1);
  return {out_shift + out_scale * halves[0],
          halves[1].clamp(kMinLogStd, kMaxLogStd) + out_scale.log()};
}

torch::Tensor ConditionalImpl::log_prob(const torch::Tensor& out, const torch::Tensor& in,
                                        torch::Generator generator) {
  if (spec.latent > 0) {
    if (!generator.defined()) throw InternalError("a conditional VAE's log-density needs a generator");
    // out [..][D], in [..][I] -> rows [M]; u [K][M][L]
    const auto lead = out.sizes().slice(0, out.dim() - 1);
    const torch::Tensor o = out.reshape({-1, spec.outputs});
    const torch::Tensor i = in.reshape({-1, spec.inputs});
    const int64_t m = o.size(0), k = spec.iwae_k;
    const auto [mean, log_sd] = posterior->params(torch::cat({i, o}, 1));  // [M][L]
    const torch::Tensor u = mean + torch::exp(log_sd) * standard_normal({k, m, spec.latent}, mean, generator);
    const torch::Tensor log_e = normal_log_prob(u, mean, log_sd);                        // [K][M]
    const torch::Tensor log_u = normal_log_prob(u, torch::zeros_like(u), torch::zeros_like(u));
    const torch::Tensor ik = i.unsqueeze(0).expand({k, m, spec.inputs});
    const torch::Tensor log_o = decoder->log_prob(o.unsqueeze(0).expand({k, m, spec.outputs}),
                                                  torch::cat({ik, u}, /*dim=*/-1));  // [K][M]
    return log_mean_exp((log_o + log_u - log_e).transpose(0, 1)).reshape(lead);
  }
  const auto [first, second] = params(in);
  return spec.family == Family::kGaussian ? normal_log_prob(out, first, second)
                                          : bernoulli_log_prob(out, first);
}

torch::Tensor ConditionalImpl::sample(const torch::Tensor& in, torch::Generator generator) {
  if (spec.latent > 0) {
    std::vector<int64_t> shape(in.sizes().begin(), in.sizes().end());
    shape.back() = spec.latent;
    return decoder->sample(torch::cat({in, standard_normal(shape, in, generator)}, /*dim=*/-1), generator);
  }
  const auto [first, second] = params(in);
  const std::vector<int64_t> shape(first.sizes().begin(), first.sizes().end());
  if (spec.family == Family::kGaussian)
    return first + torch::exp(second) * standard_normal(shape, first, generator);
  // Straight-through (Bengio, Leonard, Courville 2013): forward hard = [u < p], backward dp.
  const torch::Tensor p = torch::sigmoid(first);
  const torch::Tensor hard = (uniform(shape, p, generator) < p).to(p.scalar_type());
  return hard + (p - p.detach());  // exactly 0/1 forward
}

std::string PriorSpec::text() const {
  return "dims=" + std::to_string(dims) + ";latent=" + std::to_string(latent) +
         ";hidden=" + std::to_string(hidden) + ";family=" + family_text(family) +
         ";iwae_k=" + std::to_string(iwae_k);
}

PriorSpec PriorSpec::parse(const std::string& text) {
  const auto f = fields(text);
  PriorSpec spec;
  spec.dims = field(f, "dims", text);
  spec.latent = field(f, "latent", text);
  spec.hidden = field(f, "hidden", text);
  spec.family = family_field(f, text);
  spec.iwae_k = field(f, "iwae_k", text);
  if (spec.dims < 1 || spec.latent < 0 || spec.hidden < 0 || spec.iwae_k < 1)
    throw ModelError("prior spec '" + text + "' out of range");
  return spec;
}

PriorImpl::PriorImpl(const PriorSpec& s) : spec(s) {
  if (spec.latent == 0) {
    location = register_parameter("location", torch::zeros({spec.dims}));
    if (spec.family == Family::kGaussian)
      log_std = register_parameter("log_std", torch::zeros({spec.dims}));
    return;
  }
  encoder = register_module(
      "encoder", Conditional(ConditionalSpec{spec.dims, spec.latent, spec.hidden, Family::kGaussian}));
  decoder = register_module(
      "decoder", Conditional(ConditionalSpec{spec.latent, spec.dims, spec.hidden, spec.family}));
}

torch::Tensor PriorImpl::log_prob(const torch::Tensor& z, torch::Generator generator) {
  if (spec.latent == 0) {
    if (spec.family == Family::kBernoulli) return bernoulli_log_prob(z, location.expand_as(z));
    return normal_log_prob(z, location, log_std.clamp(kMinLogStd, kMaxLogStd));
  }
  // z [..][D] -> rows [M][D]; h [K][M][L]
  const auto lead = z.sizes().slice(0, z.dim() - 1);
  const torch::Tensor rows = z.reshape({-1, spec.dims});
  const int64_t m = rows.size(0);
  const auto [mean, log_sd] = encoder->params(rows);  // [M][L]
  const torch::Tensor eps = standard_normal({spec.iwae_k, m, spec.latent}, rows, generator);
  const torch::Tensor h = mean + torch::exp(log_sd) * eps;                       // [K][M][L]
  const torch::Tensor log_e = normal_log_prob(h, mean, log_sd);                  // [K][M]
  const torch::Tensor log_h = normal_log_prob(h, torch::zeros_like(h), torch::zeros_like(h));
  const torch::Tensor log_z = decoder->log_prob(rows.unsqueeze(0).expand({spec.iwae_k, m, spec.dims}), h);
  const torch::Tensor bound = log_mean_exp((log_z + log_h - log_e).transpose(0, 1));  // [M]
  return bound.reshape(lead);
}

void PriorImpl::standardise(const torch::Tensor& z) {
  torch::NoGradGuard no_grad;
  if (spec.latent > 0) {
    encoder->standardise(z, torch::Tensor());
    decoder->standardise(torch::Tensor(), z);
    return;
  }
  const torch::Tensor mean = z.to(location.scalar_type()).mean(0);
  if (spec.family == Family::kBernoulli) {
    location.copy_(torch::logit(mean.clamp(1e-4, 1 - 1e-4)));
  } else {
    location.copy_(mean);
    log_std.copy_(z.to(location.scalar_type()).std(0, /*unbiased=*/false).clamp_min(1e-4).log());
  }
}

torch::Tensor PriorImpl::sample(int64_t n, torch::Generator generator) {
  torch::NoGradGuard no_grad;
  if (spec.latent == 0) {
    if (spec.family == Family::kBernoulli) {
      const torch::Tensor p = torch::sigmoid(location).expand({n, spec.dims});
      return (uniform({n, spec.dims}, p, generator) < p).to(p.scalar_type());
    }
    return location + torch::exp(log_std) * standard_normal({n, spec.dims}, location, generator);
  }
  const torch::Tensor like = decoder->net->parameters().front();
  const torch::Tensor h = standard_normal({n, spec.latent}, like, generator);
  return decoder->sample(h, generator).detach();
}

namespace {

// A component file: the run's metadata, the component's name, its spec and its weights.
template <typename Module>
void save_component(const std::string& path, const std::string& name, Module& module,
                    const Metadata& metadata) {
  CheckpointWriter writer;
  for (const auto& [key, value] : metadata) writer.set(key, value);
  writer.set(kKindKey, kComponentKind);
  writer.set("septa.vba.component", name);
  writer.set("septa.vba.spec", module->spec.text());
  writer.add_module("", *module);
  writer.write(path);
}

template <typename Module, typename Spec>
Module load_component(const std::string& path, const std::string& name) {
  const Checkpoint file = Checkpoint::open(path, kComponentKind);
  if (file.get("septa.vba.component") != name)
    throw ModelError(path + ": holds component " + file.get("septa.vba.component") + ", not " + name);
  Module module(Spec::parse(file.get("septa.vba.spec")));
  file.load_module("", *module);
  return module;
}

}  // namespace

void save_conditional(const std::string& path, const std::string& name, Conditional& module,
                      const Metadata& metadata) {
  save_component(path, name, module, metadata);
}

Conditional load_conditional(const std::string& path, const std::string& name) {
  return load_component<Conditional, ConditionalSpec>(path, name);
}

void save_prior(const std::string& path, const std::string& name, Prior& module,
                const Metadata& metadata) {
  save_component(path, name, module, metadata);
}

Prior load_prior(const std::string& path, const std::string& name) {
  return load_component<Prior, PriorSpec>(path, name);
}

void copy_weights(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto source = from.named_parameters();
  for (auto& item : to.named_parameters()) item.value().copy_(source[item.key()]);
  auto buffers = from.named_buffers();
  for (auto& item : to.named_buffers()) item.value().copy_(buffers[item.key()]);
}

}  // namespace septa::nn::vba
