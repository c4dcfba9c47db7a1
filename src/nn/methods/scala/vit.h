// A Vision Transformer (DeiT: Touvron et al. 2021) whose weights are stored once at full width D
// and sliced at run time to any width d <= D (Scala: Zhang et al., NeurIPS 2024):
//   tokens   [N][T][d], T = 2 + patches (cls, distillation, patches)
//   x        = [cls[:d]; dist[:d]; patches W_e[:d,:]^T] + pos[:, :d]
//   block    x += proj(attn(LN(x)));  x += fc2(gelu(fc1(LN(x))))     (pre-LN)
//   attn     H heads of head_dim d/H: softmax(q k^T * scale) v, scale fixed from the full width
//   heads    cls = W_c[:, :d] LN(x)[0],  dist = W_d[:, :d] LN(x)[1]; prediction (cls + dist) / 2
// Every matrix is sliced to [d_out][d_in] (MLP hidden 4d, head input d), LayerNorm statistics
// run over the active channels only. A slice takes the front rows/columns of every matrix or,
// under isolated activation, the tail ones ("W[-d:, -d:]").
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "nn/checkpoint.h"
#include "nn/methods/scala/grid.h"

namespace septa::nn {

struct VitConfig {
  int64_t channels = 1;  // C of the input image [C][H][W]
  int64_t height = 28;
  int64_t width = 28;
  int64_t patch = 7;  // square patches; H and W must be multiples
  int64_t dim = 64;   // D
  int64_t depth = 4;
  int64_t heads = 4;  // fixed for every width: head_dim = d / heads
  int64_t mlp_ratio = 4;
  int64_t classes = 10;
  double attention_scale = 0;  // 0: (dim / heads)^-1/2; a slice keeps its full model's scale
  // How a slice of width d < D takes q, k and v. false: each of the three [D][D] matrices is
  // sliced to [d][d] (a channel keeps its role and partner at every width). true: the official
  // Scala code's rule, one fused qkv matrix [3D][D] = [W_q; W_k; W_v] sliced to [3d][d] and
  // split in three, so which rows act as q, k and v shifts with d (front: rows [0, 3d), tail:
  // rows [3D - 3d, 3D)); at d = D both rules are the dense ViT.
  bool fused_qkv = false;
  // true: a slice of width d < D scores attention with its own head_dim, scale (d/H)^-1/2, as
  // a dense ViT of width d would; false: the full model's scale at every width (the official
  // code). Equal at d = D.
  bool width_scale = false;
  // Switchable LayerNorms (slimmable networks' switchable BN, Yu et al. 2019, for LN affines):
  // each width d listed (< D, ascending) has private LayerNorm weights and biases [d] for every
  // norm (2 per block and the final one) instead of a slice of the shared ones; widths not
  // listed, and D, slice the shared ones. Stored cost: (2 depth + 1) * 2 d per listed width.
  std::vector<int64_t> private_norms;

  int64_t patches() const { return (height / patch) * (width / patch); }
  int64_t tokens() const { return patches() + 2; }                  // T
  int64_t patch_features() const { return channels * patch * patch; }  // P
  double scale() const;
  double scale_at(int64_t d) const;  // the attention scale a slice of width d uses
  // OptionError naming the option for a patch that does not divide the image, heads not
  // dividing dim, non-positive sizes.
  void validate() const;
};

// Which channels a sub-network of width d uses.
struct Slice {
  int64_t d = 0;      // active width (channels); MLP hidden = mlp_ratio * d
  bool tail = false;  // take the last d rows/columns of every matrix instead of the first
};

struct VitOutput {
  torch::Tensor cls;   // [N][classes] logits of the class head
  torch::Tensor dist;  // [N][classes] logits of the distillation head
  torch::Tensor logits() const { return (cls + dist) * 0.5; }  // the prediction's logits
};

struct VitBlockImpl : torch::nn::Module {
  VitBlockImpl(int64_t dim, int64_t hidden);
  torch::nn::LayerNorm norm1 = nullptr, norm2 = nullptr;
  torch::nn::Linear q = nullptr, k = nullptr, v = nullptr, proj = nullptr;
  torch::nn::Linear fc1 = nullptr, fc2 = nullptr;
};
TORCH_MODULE(VitBlock);

// The private LayerNorms of one width d (VitConfig::private_norms): norms[2b], norms[2b + 1] =
// block b's norm1 and norm2, norms[2 depth] = the final norm; each [d].
struct NormSetImpl : torch::nn::Module {
  NormSetImpl(int64_t d, int64_t depth);
  std::vector<torch::nn::LayerNorm> norms;
};
TORCH_MODULE(NormSet);

struct VitImpl : torch::nn::Module {
  explicit VitImpl(const VitConfig& config);

  // The dense forward through the modules themselves: [N][C*H*W] -> logits at width D.
  VitOutput forward(const torch::Tensor& images);
  // The same network sliced to `slice` (any d in [heads, D] divisible by heads; no grid check).
  VitOutput forward_slice(const torch::Tensor& images, const Slice& slice);

  const VitConfig& config() const { return config_; }
  // The private norms of width d, or nullptr when d slices the shared ones.
  NormSetImpl* norm_set(int64_t d);

  VitConfig config_;
  torch::nn::Linear patch_embed = nullptr;  // [D][P]
  torch::Tensor cls_token, dist_token;      // [D] each
  torch::Tensor pos_embed;                  // [T][D]
  std::vector<VitBlock> blocks;
  torch::nn::LayerNorm norm = nullptr;
  torch::nn::Linear head = nullptr, head_dist = nullptr;  // [classes][D]
  std::vector<std::pair<int64_t, NormSet>> norm_sets;     // (d, norms of width d), as listed
};
TORCH_MODULE(Vit);

// Parameters the ViT stores (every width's, the private norms included).
int64_t stored_parameters(VitImpl& net);

// [N][C*H*W] -> [N][patches][P], patches in row-major order, each flattened as [C][p][p].
torch::Tensor to_patches(const torch::Tensor& images, const VitConfig& config);

// Parameters of a dense ViT of width d (what a slice of width d touches).
int64_t vit_parameters(const VitConfig& config, int64_t d);
// Multiply-accumulates of one image's forward at width d: patch embedding N_p P d, per block
// T (4 d^2 + 2 d h) + 2 T^2 d (scores and weighted values), both heads 2 d C; LayerNorm,
// softmax and GELU not counted.
int64_t vit_macs(const VitConfig& config, int64_t d);

// The dense ViT of width slice.d holding exactly the sliced weights of `full` (attention scale
// kept): its forward equals full->forward_slice(x, slice).
Vit export_slice(VitImpl& full, const Slice& slice);

// A slimmable ViT: the full-width weights, the grid, and the slicing rule.
class SlimmableVit {
 public:
  // isolated: intermediate widths slice the tail of every matrix, the smallest and full width
  // the front (isolated activation); otherwise every width slices the front (US-Net).
  SlimmableVit(Vit net, WidthGrid grid, bool isolated);

  // forward(x, r) for a grid ratio r; OptionError naming the nearest grid widths otherwise.
  VitOutput forward(const torch::Tensor& images, double r);
  // The slice of grid width d (channels), or of any ratio for experiments off the grid.
  Slice slice(int64_t d) const;
  Slice slice_unchecked(double r) const;  // OptionError when r * D is not a multiple of heads
  std::vector<double> widths() const { return grid_.ratios(); }

  Vit& net() { return net_; }
  const WidthGrid& grid() const { return grid_; }
  bool isolated() const { return isolated_; }

 private:
  Vit net_;
  WidthGrid grid_;
  bool isolated_;
};

// Checkpoint kind "vit": the weights plus every VitConfig field, the grid (s, eps) and the
// slicing rule as metadata (septa.nn.vit.*), so a plain ViT (grid of one width) or a slimmable
// one is rebuilt from the file alone.
inline constexpr const char* kVitKind = "vit";
void save_vit(SlimmableVit& model, const Metadata& run, const std::string& path);
// ModelError naming the file for a file of another kind, bad or missing config keys, or
// weights that do not fit the config.
SlimmableVit load_vit(const std::string& path);

}  // namespace septa::nn
