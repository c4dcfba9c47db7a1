// The slimmable ViT: dense and sliced forwards, export of a slice, checkpoints.
#include "nn/methods/scala/vit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "septa/error.h"

namespace septa::nn {
namespace {

namespace F = torch::nn::functional;

constexpr double kLayerNormEps = 1e-6;  // DeiT's

// Entries [first, first + n) of dimension `dim` of `w`: the front n, or the last n when `tail`.
// Made contiguous, so that a slice multiplies exactly as the same matrix stored densely does
// (the exported ViT's logits are then bit-identical); the copies are weight-sized only.
torch::Tensor take(const torch::Tensor& w, int64_t dim, int64_t n, bool tail) {
  return w.narrow(dim, tail ? w.size(dim) - n : 0, n).contiguous();
}

// y = x W[rows, cols]^T + b[rows] for a Linear of [out][in] sliced to [n_out][n_in].
torch::Tensor sliced_linear(const torch::Tensor& x, torch::nn::Linear& layer, int64_t n_out,
                            int64_t n_in, bool tail_out, bool tail_in) {
  const torch::Tensor w = take(take(layer->weight, 0, n_out, tail_out), 1, n_in, tail_in);
  return F::linear(x, w, take(layer->bias, 0, n_out, tail_out));
}

// The q, k and v weights [d][d] and biases [d] of a slice (VitConfig::fused_qkv):
//   split   W_q[rows, cols], W_k[rows, cols], W_v[rows, cols]   (rows, cols: front or tail d)
//   fused   W = [W_q; W_k; W_v] [3D][D];  W[R, cols] split in three blocks of d rows, in order,
//           R = [0, 3d) front or [3D - 3d, 3D) tail   (Scala's code: qkv.weight[-3d:, -d:])
struct QkvSlice {
  torch::Tensor weight[3], bias[3];
};
QkvSlice qkv_slice(VitBlockImpl& b, const VitConfig& c, int64_t d, bool tail) {
  QkvSlice out;
  if (!c.fused_qkv) {
    int i = 0;
    for (torch::nn::Linear* layer : {&b.q, &b.k, &b.v}) {
      out.weight[i] = take(take((*layer)->weight, 0, d, tail), 1, d, tail);
      out.bias[i++] = take((*layer)->bias, 0, d, tail);
    }
    return out;
  }
  const torch::Tensor w = take(torch::cat({b.q->weight, b.k->weight, b.v->weight}, 0), 0, 3 * d, tail);
  const torch::Tensor bias = take(torch::cat({b.q->bias, b.k->bias, b.v->bias}, 0), 0, 3 * d, tail);
  for (int i = 0; i < 3; ++i) {  // [3d][D] -> three [d][d]
    out.weight[i] = take(w.narrow(0, i * d, d), 1, d, tail);
    out.bias[i] = bias.narrow(0, i * d, d).contiguous();
  }
  return out;
}

torch::Tensor sliced_norm(const torch::Tensor& x, torch::nn::LayerNorm& norm, int64_t d, bool tail) {
  return torch::layer_norm(x, {d}, take(norm->weight, 0, d, tail), take(norm->bias, 0, d, tail),
                           kLayerNormEps);
}

// Multi-head self-attention core on projected q, k, v [N][T][d]:
//   out_h = softmax(q_h k_h^T * scale) v_h for each of H heads of d/H channels; [N][T][d]
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        int64_t heads, double scale) {
  const int64_t n = q.size(0), t = q.size(1), d = q.size(2);
  auto split = [&](const torch::Tensor& x) {  // [N][H][T][d/H]
    return x.reshape({n, t, heads, d / heads}).transpose(1, 2);
  };
  const torch::Tensor weights = torch::softmax(
      torch::matmul(split(q), split(k).transpose(-2, -1)) * scale, /*dim=*/-1);  // [N][H][T][T]
  return torch::matmul(weights, split(v)).transpose(1, 2).reshape({n, t, d});
}

// DeiT's initialisation: N(0, 0.02) weights (timm truncates at +-2, i.e. not at all), zero biases.
void init_linear(torch::nn::Linear& layer) {
  torch::nn::init::normal_(layer->weight, /*mean=*/0.0, /*std=*/0.02);
  torch::nn::init::zeros_(layer->bias);
}

std::string key(const char* name) { return std::string("septa.nn.vit.") + name; }

// 17 significant digits: the double reads back bit for bit.
std::string exact_text(double x) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", x);
  return text;
}

}  // namespace

double VitConfig::scale() const {
  return attention_scale > 0 ? attention_scale
                             : 1.0 / std::sqrt(static_cast<double>(dim) / static_cast<double>(heads));
}

double VitConfig::scale_at(int64_t d) const {
  return width_scale && d != dim
             ? 1.0 / std::sqrt(static_cast<double>(d) / static_cast<double>(heads))
             : scale();
}

void VitConfig::validate() const {
  if (channels < 1 || height < 1 || width < 1) throw OptionError("empty image shape");
  if (patch < 1 || height % patch != 0 || width % patch != 0)
    throw OptionError("--patch " + std::to_string(patch) + " must divide the image's height " +
                      std::to_string(height) + " and width " + std::to_string(width));
  if (dim < 1 || heads < 1 || dim % heads != 0)
    throw OptionError("--heads " + std::to_string(heads) + " must divide --dim " + std::to_string(dim));
  if (depth < 1 || mlp_ratio < 1 || classes < 2) throw OptionError("--depth and classes must be >= 1 and 2");
  for (size_t i = 0; i < private_norms.size(); ++i)
    if (private_norms[i] < 1 || private_norms[i] >= dim || (i > 0 && private_norms[i] <= private_norms[i - 1]))
      throw OptionError("private LayerNorm widths must ascend within [1, D)");
}

NormSetImpl::NormSetImpl(int64_t d, int64_t depth) {
  for (int64_t i = 0; i < 2 * depth + 1; ++i)
    norms.push_back(register_module(
        std::to_string(i), torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(kLayerNormEps))));
}

VitBlockImpl::VitBlockImpl(int64_t dim, int64_t hidden) {
  auto ln = [dim] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(kLayerNormEps)); };
  norm1 = register_module("norm1", ln());
  q = register_module("q", torch::nn::Linear(dim, dim));
  k = register_module("k", torch::nn::Linear(dim, dim));
  v = register_module("v", torch::nn::Linear(dim, dim));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
  norm2 = register_module("norm2", ln());
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
  for (auto* layer : {&q, &k, &v, &proj, &fc1, &fc2}) init_linear(*layer);
}

VitImpl::VitImpl(const VitConfig& config) : config_(config) {
  config.validate();
  const int64_t d = config.dim;
  patch_embed = register_module("patch_embed", torch::nn::Linear(config.patch_features(), d));
  init_linear(patch_embed);
  cls_token = register_parameter("cls_token", torch::zeros({d}));
  dist_token = register_parameter("dist_token", torch::zeros({d}));
  pos_embed = register_parameter("pos_embed", torch::zeros({config.tokens(), d}));
  for (auto* t : {&cls_token, &dist_token, &pos_embed})
    torch::nn::init::normal_(*t, /*mean=*/0.0, /*std=*/0.02);
  torch::nn::ModuleList list;
  for (int64_t b = 0; b < config.depth; ++b) {
    blocks.push_back(VitBlock(d, config.mlp_ratio * d));
    list->push_back(blocks.back());
  }
  register_module("blocks", list);  // parameters "blocks.<b>.<name>"
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(kLayerNormEps)));
  head = register_module("head", torch::nn::Linear(d, config.classes));
  head_dist = register_module("head_dist", torch::nn::Linear(d, config.classes));
  init_linear(head);
  init_linear(head_dist);
  for (const int64_t w : config.private_norms)  // parameters "norms_<d>.<i>.weight"
    norm_sets.emplace_back(w, register_module("norms_" + std::to_string(w), NormSet(w, config.depth)));
}

NormSetImpl* VitImpl::norm_set(int64_t d) {
  for (auto& [w, set] : norm_sets)
    if (w == d) return set.get();
  return nullptr;
}

int64_t stored_parameters(VitImpl& net) {
  int64_t n = 0;
  for (const auto& p : net.parameters()) n += p.numel();
  return n;
}

torch::Tensor to_patches(const torch::Tensor& images, const VitConfig& c) {
  const int64_t n = images.size(0), p = c.patch;
  return images.reshape({n, c.channels, c.height / p, p, c.width / p, p})
      .permute({0, 2, 4, 1, 3, 5})
      .reshape({n, c.patches(), c.patch_features()});
}

VitOutput VitImpl::forward(const torch::Tensor& images) {
  const int64_t n = images.size(0);
  torch::Tensor x = patch_embed->forward(to_patches(images, config_));  // [N][patches][D]
  x = torch::cat({cls_token.expand({n, 1, config_.dim}), dist_token.expand({n, 1, config_.dim}), x},
                 /*dim=*/1) + pos_embed;  // [N][T][D]
  for (auto& block : blocks) {
    const torch::Tensor h = block->norm1->forward(x);
    x = x + block->proj->forward(attention(block->q->forward(h), block->k->forward(h),
                                           block->v->forward(h), config_.heads, config_.scale()));
    x = x + block->fc2->forward(torch::gelu(block->fc1->forward(block->norm2->forward(x))));
  }
  x = norm->forward(x);
  return {head->forward(x.select(1, 0)), head_dist->forward(x.select(1, 1))};
}

VitOutput VitImpl::forward_slice(const torch::Tensor& images, const Slice& s) {
  const int64_t d = s.d, hidden = config_.mlp_ratio * d, n = images.size(0);
  SEPTA_CHECK(d >= config_.heads && d <= config_.dim && d % config_.heads == 0);
  const bool t = s.tail;
  NormSetImpl* own = norm_set(d);
  // LN(x) with the width's private affine when it has one, else the shared one sliced.
  auto norm_at = [&](const torch::Tensor& in, size_t i, torch::nn::LayerNorm& shared) {
    return own ? own->norms[i]->forward(in) : sliced_norm(in, shared, d, t);
  };
  torch::Tensor x = sliced_linear(to_patches(images, config_), patch_embed, d,
                                  config_.patch_features(), t, false);  // [N][patches][d]
  x = torch::cat({take(cls_token, 0, d, t).expand({n, 1, d}),
                  take(dist_token, 0, d, t).expand({n, 1, d}), x},
                 /*dim=*/1) + take(pos_embed, 1, d, t);  // [N][T][d]
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto& b = blocks[i];
    const torch::Tensor h = norm_at(x, 2 * i, b->norm1);
    const QkvSlice w = qkv_slice(*b, config_, d, t);
    const torch::Tensor mixed =
        attention(F::linear(h, w.weight[0], w.bias[0]), F::linear(h, w.weight[1], w.bias[1]),
                  F::linear(h, w.weight[2], w.bias[2]), config_.heads, config_.scale_at(d));
    x = x + sliced_linear(mixed, b->proj, d, d, t, t);
    const torch::Tensor g = torch::gelu(sliced_linear(norm_at(x, 2 * i + 1, b->norm2), b->fc1,
                                                      hidden, d, t, t));  // [N][T][4d]
    x = x + sliced_linear(g, b->fc2, d, hidden, t, t);
  }
  x = norm_at(x, 2 * blocks.size(), norm);
  return {sliced_linear(x.select(1, 0), head, config_.classes, d, false, t),
          sliced_linear(x.select(1, 1), head_dist, config_.classes, d, false, t)};
}

int64_t vit_parameters(const VitConfig& c, int64_t d) {
  const int64_t h = c.mlp_ratio * d;
  const int64_t block = 2 * 2 * d + 4 * (d * d + d) + (d * h + h) + (h * d + d);
  return c.patch_features() * d + d + 2 * d + c.tokens() * d + c.depth * block + 2 * d +
         2 * (d * c.classes + c.classes);
}

int64_t vit_macs(const VitConfig& c, int64_t d) {
  const int64_t h = c.mlp_ratio * d, t = c.tokens();
  const int64_t block = t * (4 * d * d + 2 * d * h) + 2 * t * t * d;
  return c.patches() * c.patch_features() * d + c.depth * block + 2 * d * c.classes;
}

Vit export_slice(VitImpl& full, const Slice& s) {
  VitConfig config = full.config();
  config.dim = s.d;
  config.attention_scale = full.config().scale_at(s.d);
  config.fused_qkv = false;  // a dense ViT: both rules agree at full width
  config.width_scale = false;
  config.private_norms.clear();  // the width's own norms become the dense net's
  Vit dense(config);
  const int64_t d = s.d;
  const bool t = s.tail;
  NormSetImpl* own = full.norm_set(d);
  torch::NoGradGuard no_grad;
  // Each tensor of the dense net is the slice forward_slice reads (same rule as above).
  auto lin = [t](torch::nn::Linear& to, torch::nn::Linear& from, bool slice_out, bool slice_in) {
    torch::Tensor w = from->weight;
    if (slice_out) w = take(w, 0, to->weight.size(0), t);
    if (slice_in) w = take(w, 1, to->weight.size(1), t);
    to->weight.copy_(w);
    to->bias.copy_(slice_out ? take(from->bias, 0, to->bias.size(0), t) : from->bias);
  };
  auto ln = [t, d, own](torch::nn::LayerNorm& to, torch::nn::LayerNorm& shared, size_t i) {
    torch::nn::LayerNorm& from = own ? own->norms[i] : shared;
    to->weight.copy_(take(from->weight, 0, d, t && !own));
    to->bias.copy_(take(from->bias, 0, d, t && !own));
  };
  lin(dense->patch_embed, full.patch_embed, true, false);
  dense->cls_token.copy_(take(full.cls_token, 0, d, t));
  dense->dist_token.copy_(take(full.dist_token, 0, d, t));
  dense->pos_embed.copy_(take(full.pos_embed, 1, d, t));
  for (size_t b = 0; b < full.blocks.size(); ++b) {
    auto& to = dense->blocks[b];
    auto& from = full.blocks[b];
    ln(to->norm1, from->norm1, 2 * b);
    ln(to->norm2, from->norm2, 2 * b + 1);
    const QkvSlice w = qkv_slice(*from, full.config(), d, t);
    int i = 0;
    for (torch::nn::Linear* layer : {&to->q, &to->k, &to->v}) {
      (*layer)->weight.copy_(w.weight[i]);
      (*layer)->bias.copy_(w.bias[i++]);
    }
    for (auto [a, c] : {std::pair{&to->proj, &from->proj}, {&to->fc1, &from->fc1}, {&to->fc2, &from->fc2}})
      lin(*a, *c, true, true);
  }
  ln(dense->norm, full.norm, 2 * full.blocks.size());
  lin(dense->head, full.head, false, true);
  lin(dense->head_dist, full.head_dist, false, true);
  return dense;
}

SlimmableVit::SlimmableVit(Vit net, WidthGrid grid, bool isolated)
    : net_(std::move(net)), grid_(std::move(grid)), isolated_(isolated) {
  SEPTA_CHECK(grid_.full_width() == net_->config().dim);
}

Slice SlimmableVit::slice(int64_t d) const {
  return {d, isolated_ && d != grid_.smallest() && d != grid_.largest()};
}

Slice SlimmableVit::slice_unchecked(double r) const {
  const VitConfig& c = net_->config();
  const double channels = r * static_cast<double>(c.dim);
  const int64_t d = std::llround(channels);
  if (std::fabs(channels - static_cast<double>(d)) > 1e-6 || d < c.heads || d > c.dim ||
      d % c.heads != 0)
    throw OptionError("width r = " + ratio_text(r) + " gives " + ratio_text(channels) +
                      " channels, not a multiple of the " + std::to_string(c.heads) +
                      " heads in [heads, D]");
  return slice(d);
}

VitOutput SlimmableVit::forward(const torch::Tensor& images, double r) {
  const int64_t d = grid_.width_of(r);
  return d == net_->config().dim && !slice(d).tail ? net_->forward(images)
                                                    : net_->forward_slice(images, slice(d));
}

void save_vit(SlimmableVit& model, const Metadata& run, const std::string& path) {
  CheckpointWriter writer;
  for (const auto& [k, v] : run) writer.set(k, v);
  writer.set(kKindKey, kVitKind);
  const VitConfig& c = model.net()->config();
  for (const auto& [name, value] :
       {std::pair<const char*, int64_t>{"channels", c.channels}, {"height", c.height},
        {"width", c.width}, {"patch", c.patch}, {"dim", c.dim}, {"depth", c.depth},
        {"heads", c.heads}, {"mlp_ratio", c.mlp_ratio}, {"classes", c.classes},
        {"isolated", model.isolated() ? 1 : 0}, {"fused_qkv", c.fused_qkv ? 1 : 0},
        {"width_scale", c.width_scale ? 1 : 0}})
    writer.set(key(name), std::to_string(value));
  writer.set(key("scale"), exact_text(c.scale()));
  if (!c.private_norms.empty()) {
    std::string widths;
    for (const int64_t w : c.private_norms) widths += (widths.empty() ? "" : ",") + std::to_string(w);
    writer.set(key("private_norms"), widths);
  }
  writer.set(key("s"), ratio_text(model.grid().s()));
  writer.set(key("eps"), ratio_text(model.grid().eps()));
  writer.add_module("", *model.net());
  writer.write(path);
}

SlimmableVit load_vit(const std::string& path) {
  const Checkpoint file = Checkpoint::open(path, kVitKind);
  auto integer = [&](const char* name) {
    const std::string& text = file.get(key(name));
    try {
      size_t used = 0;
      const int64_t v = std::stoll(text, &used);
      if (used == text.size() && v >= 0 && v <= (int64_t{1} << 40)) return v;
    } catch (const std::exception&) {
    }
    throw ModelError(path + ": bad " + key(name) + " '" + text + "'");
  };
  auto real = [&](const char* name) {
    const std::string& text = file.get(key(name));
    try {
      size_t used = 0;
      const double v = std::stod(text, &used);
      if (used == text.size() && std::isfinite(v) && v > 0) return v;
    } catch (const std::exception&) {
    }
    throw ModelError(path + ": bad " + key(name) + " '" + text + "'");
  };
  VitConfig c;
  c.channels = integer("channels");
  c.height = integer("height");
  c.width = integer("width");
  c.patch = integer("patch");
  c.dim = integer("dim");
  c.depth = integer("depth");
  c.heads = integer("heads");
  c.mlp_ratio = integer("mlp_ratio");
  c.classes = integer("classes");
  c.attention_scale = real("scale");
  auto flag = [&](const char* name) {  // absent in older files: 0
    return file.metadata().count(key(name)) != 0 && integer(name) != 0;
  };
  c.fused_qkv = flag("fused_qkv");
  c.width_scale = flag("width_scale");
  if (file.metadata().count(key("private_norms")) != 0) {  // "16,20,24": absent in older files
    const std::string& text = file.get(key("private_norms"));
    for (size_t at = 0; at <= text.size();) {
      const size_t end = std::min(text.find(',', at), text.size());
      const std::string item = text.substr(at, end - at);
      size_t used = 0;
      int64_t w = -1;
      try {
        w = std::stoll(item, &used);
      } catch (const std::exception&) {
      }
      if (item.empty() || used != item.size() || w < 1 || w > (int64_t{1} << 40))
        throw ModelError(path + ": bad " + key("private_norms") + " '" + text + "'");
      c.private_norms.push_back(w);
      at = end + 1;
    }
  }
  try {
    c.validate();
    Vit net(c);
    file.load_module("", *net);
    WidthGrid grid(c.dim, real("s"), real("eps"), c.heads);
    return SlimmableVit(net, grid, integer("isolated") != 0);
  } catch (const OptionError& e) {
    throw ModelError(path + ": inconsistent ViT description: " + e.what());
  }
}

}  // namespace septa::nn
