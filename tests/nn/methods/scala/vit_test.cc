// The slimmable ViT: slicing at r = 1 is the dense forward; a slice touches exactly the
// parameters of a dense ViT of its width; isolated activation confines the smallest and the
// intermediate nets' gradients to their own slices; an exported width reloads as a plain ViT with
// identical logits; off-grid widths are refused.
#include "nn/methods/scala/vit.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "nn/test_util.h"
#include "septa/error.h"

namespace septa::nn {
namespace {

// D = 32 and MLP 128 differ from every other dimension (P = 49, T = 18, classes = 10), so a
// tensor dimension of size 32 or 128 is a width dimension.
VitConfig small_config() {
  VitConfig c;
  c.dim = 32;
  c.depth = 2;
  c.heads = 4;
  c.patch = 7;
  c.classes = 10;
  return c;
}

torch::Tensor random_images(int64_t n) { return torch::rand({n, 784}); }

Vit trained_like_net(const VitConfig& c) {
  Vit net(c);
  // Non-trivial LayerNorm affines and biases, so that slicing mistakes in them show.
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.add_(torch::randn_like(p) * 0.05);
  return net;
}

// The key projection's bias adds q . b_k to every score of a row, which softmax ignores: its
// gradient is zero up to rounding (sometimes exactly), so the checks below that need a non-zero
// gradient at every active entry skip it.
bool shift_invariant(const std::string& name) {
  return name.size() >= 6 && name.compare(name.size() - 6, 6, "k.bias") == 0;
}

// A loss that reaches every other parameter of the active slice with a non-zero gradient.
torch::Tensor probe_loss(const VitOutput& out) {
  torch::manual_seed(99);
  return (out.cls * torch::randn_like(out.cls)).sum() + (out.dist * torch::randn_like(out.dist)).sum();
}

int64_t numel(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

class VitTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::setup_torch(); }
};

TEST_F(VitTest, SlicingAtFullWidthEqualsTheDenseForward) {
  Vit net = trained_like_net(small_config());
  const torch::Tensor x = random_images(6);
  const VitOutput dense = net->forward(x);
  for (const bool tail : {false, true}) {
    const VitOutput sliced = net->forward_slice(x, Slice{32, tail});
    EXPECT_TRUE(torch::equal(sliced.cls, dense.cls)) << "tail " << tail;
    EXPECT_TRUE(torch::equal(sliced.dist, dense.dist)) << "tail " << tail;
  }
  // And a slice below full width is a different network (the comparison can fail).
  EXPECT_FALSE(torch::allclose(net->forward_slice(x, Slice{16, false}).cls, dense.cls));
}

TEST_F(VitTest, ParametersTouchedAtAWidthEqualADenseViTOfThatWidth) {
  const VitConfig c = small_config();
  Vit net = trained_like_net(c);
  const torch::Tensor x = random_images(4);
  for (int64_t d = 8; d <= 32; d += 4) {
    VitConfig dense_config = c;
    dense_config.dim = d;
    Vit dense(dense_config);
    ASSERT_EQ(vit_parameters(c, d), numel(*dense)) << d;
    for (const bool tail : {false, true}) {
      net->zero_grad();
      probe_loss(net->forward_slice(x, Slice{d, tail})).backward();
      int64_t touched = 0;
      for (const auto& p : net->named_parameters())
        if (p.value().grad().defined() && !shift_invariant(p.key()))
          touched += p.value().grad().ne(0).sum().item<int64_t>();
      EXPECT_EQ(touched, numel(*dense) - c.depth * d) << "d " << d << " tail " << tail;
    }
  }
  EXPECT_GT(vit_macs(c, 32), vit_macs(c, 16));
  // patch embedding 16*49*32 + 2 blocks of 18 (4*32^2 + 2*32*128) + 2*18^2*32 + heads 2*32*10
  EXPECT_EQ(vit_macs(c, 32), 16 * 49 * 32 + 2 * (18 * (4 * 32 * 32 + 2 * 32 * 128) + 2 * 18 * 18 * 32) +
                                 2 * 32 * 10);
}

// Zero gradient outside rows/columns [front or tail `w`] of every width dimension (size D = 32
// or MLP 4D = 128) and non-zero everywhere inside: the gradient lives exactly in the slice.
void expect_gradient_only_in_slice(Vit& net, const Slice& s) {
  for (const auto& item : net->named_parameters()) {
    const torch::Tensor& g = item.value().grad();
    ASSERT_TRUE(g.defined()) << item.key();
    torch::Tensor inside = g;
    for (int64_t dim = 0; dim < g.dim(); ++dim) {
      const int64_t size = g.size(dim);
      if (size != 32 && size != 128) continue;
      const int64_t w = size == 32 ? s.d : 4 * s.d;
      inside = inside.narrow(dim, s.tail ? size - w : 0, w);
    }
    const int64_t nonzero = g.ne(0).sum().item<int64_t>();
    EXPECT_EQ(inside.ne(0).sum().item<int64_t>(), nonzero) << item.key() << ": gradient outside the slice";
    if (!shift_invariant(item.key())) {
      EXPECT_EQ(nonzero, inside.numel()) << item.key() << ": untouched entries inside the slice";
    }
  }
}

TEST_F(VitTest, IsolatedActivationConfinesGradientsToEachNetsSlice) {
  const VitConfig c = small_config();
  SlimmableVit model(trained_like_net(c), WidthGrid(32, 0.25, 0.125, 4), /*isolated=*/true);
  const torch::Tensor x = random_images(4);
  // The smallest net: the front 8 channels; an intermediate (16 of 32): the tail 16, disjoint.
  const Slice smallest = model.slice(8);
  const Slice middle = model.slice(16);
  EXPECT_FALSE(smallest.tail);
  EXPECT_TRUE(middle.tail);
  EXPECT_FALSE(model.slice(32).tail);
  for (const Slice& s : {smallest, middle, model.slice(24)}) {
    model.net()->zero_grad();
    probe_loss(model.net()->forward_slice(x, s)).backward();
    SCOPED_TRACE("d " + std::to_string(s.d));
    expect_gradient_only_in_slice(model.net(), s);
  }
  // Without isolation every width takes the front: the middle net's slice covers the smallest's.
  SlimmableVit nested(trained_like_net(c), WidthGrid(32, 0.25, 0.125, 4), /*isolated=*/false);
  EXPECT_FALSE(nested.slice(16).tail);
  nested.net()->zero_grad();
  probe_loss(nested.net()->forward_slice(x, nested.slice(16))).backward();
  expect_gradient_only_in_slice(nested.net(), nested.slice(16));
  EXPECT_NE(nested.net()->patch_embed->weight.grad().narrow(0, 0, 8).abs().sum().item<double>(), 0.0);
}

// The official code's rule (VitConfig::fused_qkv): a slice of width d takes rows [first,
// first + 3d) of [W_q; W_k; W_v] (96 rows at D = 32), first = 0 (front) or 96 - 3d (tail), and
// the front/tail d columns; the three blocks of d rows act as q, k and v. Checked through where
// the gradient lands, worked out by hand for each case (the k block's bias is shift-invariant).
TEST_F(VitTest, FusedQkvTakesItsRowsFromTheConcatenatedMatrix) {
  VitConfig c = small_config();
  c.fused_qkv = true;
  Vit net = trained_like_net(c);
  const torch::Tensor x = random_images(4);
  EXPECT_TRUE(torch::equal(net->forward_slice(x, Slice{32, false}).cls, net->forward(x).cls));
  VitConfig split_config = small_config();
  Vit split(split_config);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < split->parameters().size(); ++i) split->parameters()[i].copy_(net->parameters()[i]);
  }
  EXPECT_FALSE(torch::allclose(net->forward_slice(x, Slice{16, true}).cls,
                               split->forward_slice(x, Slice{16, true}).cls));
  struct Case {
    Slice s;
    int64_t first;  // first row of [W_q; W_k; W_v]
  };
  // front 8: q rows 0..23 serve as q, k and v; tail 8: v rows 8..31; tail 16: k rows 16..31 as
  // q, v rows 0..15 as k, v rows 16..31 as v; front 24: q rows 0..23 as q, q rows 24..31 and
  // k rows 0..15 as k, k rows 16..31 and v rows 0..7 as v.
  for (const Case& k : {Case{{8, false}, 0}, Case{{8, true}, 72}, Case{{16, true}, 48}, Case{{24, false}, 0}}) {
    SCOPED_TRACE("d " + std::to_string(k.s.d) + " tail " + std::to_string(k.s.tail));
    net->zero_grad();
    probe_loss(net->forward_slice(x, k.s)).backward();
    const int64_t d = k.s.d, col = k.s.tail ? 32 - d : 0;
    for (auto& b : net->blocks) {
      const torch::Tensor g = torch::cat({b->q->weight.grad(), b->k->weight.grad(), b->v->weight.grad()}, 0);
      torch::Tensor expected = torch::zeros({96, 32}, torch::kBool);
      expected.narrow(0, k.first, 3 * d).narrow(1, col, d).fill_(true);
      EXPECT_TRUE(torch::equal(g.ne(0), expected));
      const torch::Tensor gb = torch::cat({b->q->bias.grad(), b->k->bias.grad(), b->v->bias.grad()});
      torch::Tensor bias_expected = torch::zeros({96}, torch::kBool);
      bias_expected.narrow(0, k.first, d).fill_(true);           // acting as q
      bias_expected.narrow(0, k.first + 2 * d, d).fill_(true);   // acting as v
      EXPECT_TRUE(torch::equal(gb.ne(0).logical_and(bias_expected), bias_expected));
      EXPECT_EQ(gb.ne(0).logical_and(bias_expected.logical_not()).narrow(0, 0, k.first).sum().item<int64_t>(), 0);
      if (k.first + 3 * d < 96) {
        EXPECT_EQ(gb.narrow(0, k.first + 3 * d, 96 - k.first - 3 * d).ne(0).sum().item<int64_t>(), 0);
      }
    }
  }
}

// VitConfig::width_scale: a slice of width d < D scores attention with (d/H)^-1/2 instead of the
// full width's (D/H)^-1/2; the full width is unchanged, and the export carries the width's scale
// (identical logits, checked in the export test below).
TEST_F(VitTest, WidthScaleChangesOnlyTheNarrowerWidths) {
  VitConfig c = small_config();
  Vit shared = trained_like_net(c);
  c.width_scale = true;
  Vit own(c);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < own->parameters().size(); ++i) own->parameters()[i].copy_(shared->parameters()[i]);
  }
  EXPECT_DOUBLE_EQ(c.scale_at(32), 0.5 / std::sqrt(2.0));  // (32/4)^-1/2
  EXPECT_DOUBLE_EQ(c.scale_at(16), 0.5);                   // (16/4)^-1/2
  EXPECT_DOUBLE_EQ(small_config().scale_at(16), 0.5 / std::sqrt(2.0));
  const torch::Tensor x = random_images(3);
  EXPECT_TRUE(torch::equal(own->forward_slice(x, Slice{32, false}).cls,
                           shared->forward_slice(x, Slice{32, false}).cls));
  EXPECT_FALSE(torch::allclose(own->forward_slice(x, Slice{16, true}).cls,
                               shared->forward_slice(x, Slice{16, true}).cls));
}

// Switchable norms (VitConfig::private_norms): a listed width normalises with its own affines,
// so its gradient reaches its own norm set and none of the shared norms or other sets, and it
// still touches exactly the parameter count of a dense ViT of its width; an unlisted width and
// D use the shared norms and leave every set untouched.
TEST_F(VitTest, SwitchableNormsTakeTheGradientOfTheirWidthOnly) {
  VitConfig c = small_config();
  c.private_norms = {8, 16, 24};
  Vit net = trained_like_net(c);
  ASSERT_EQ(net->norm_sets.size(), 3u);
  EXPECT_EQ(stored_parameters(*net), vit_parameters(c, 32) + (8 + 16 + 24) * 2 * (2 * 2 + 1));
  const torch::Tensor x = random_images(4);
  auto norm_gradient = [&](const std::string& prefix) {
    double sum = 0;
    for (const auto& p : net->named_parameters())
      if (p.key().rfind(prefix, 0) == 0 && p.key().find("norm") != std::string::npos &&
          p.value().grad().defined())
        sum += p.value().grad().abs().sum().item<double>();
    return sum;
  };
  for (const Slice s : {Slice{8, false}, Slice{16, true}, Slice{20, true}, Slice{32, false}}) {
    SCOPED_TRACE("d " + std::to_string(s.d));
    net->zero_grad();
    probe_loss(net->forward_slice(x, s)).backward();
    const bool listed = net->norm_set(s.d) != nullptr;
    EXPECT_EQ(listed, s.d == 8 || s.d == 16);
    for (const int64_t w : {8, 16, 24}) {
      const double g = norm_gradient("norms_" + std::to_string(w) + ".");
      EXPECT_EQ(g != 0, w == s.d) << "set " << w;
    }
    const double shared = norm_gradient("blocks.") + norm_gradient("norm.");
    EXPECT_EQ(shared != 0, !listed);
    int64_t touched = 0;
    for (const auto& p : net->named_parameters())
      if (p.value().grad().defined() && !shift_invariant(p.key()))
        touched += p.value().grad().ne(0).sum().item<int64_t>();
    EXPECT_EQ(touched, vit_parameters(c, s.d) - c.depth * s.d);
  }
  // Listed widths must ascend below D.
  c.private_norms = {16, 8};
  EXPECT_THROW(c.validate(), OptionError);
  c.private_norms = {32};
  EXPECT_THROW(c.validate(), OptionError);
}

TEST_F(VitTest, OffGridWidthIsRejectedNamingTheNearestGridWidths) {
  SlimmableVit model(trained_like_net(small_config()), WidthGrid(32, 0.25, 0.125, 4), true);
  const torch::Tensor x = random_images(2);
  EXPECT_NO_THROW(model.forward(x, 0.375));
  try {
    model.forward(x, 0.3);
    FAIL() << "no error";
  } catch (const OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("0.25 and 0.375"), std::string::npos) << e.what();
  }
  EXPECT_THROW(model.slice_unchecked(0.3), OptionError);     // 9.6 channels
  EXPECT_THROW(model.slice_unchecked(0.4375), OptionError);  // 14 channels: not 4 whole heads
  EXPECT_EQ(model.slice_unchecked(0.375).d, 12);
}

TEST_F(VitTest, ExportedWidthLoadsAsAPlainViTWithIdenticalLogits) {
 // Variants: 0 the default, 1 fused q/k/v, 2 width-own attention scale and switchable norms.
 for (const int variant : {0, 1, 2}) {
  const bool fused = variant == 1;
  VitConfig c = small_config();
  c.fused_qkv = fused;
  if (variant == 2) {
    c.width_scale = true;
    c.private_norms = {8, 12, 16, 20, 24, 28};
  }
  SlimmableVit model(trained_like_net(c), WidthGrid(32, 0.25, 0.125, 4), /*isolated=*/true);
  const torch::Tensor x = random_images(5);
  const std::string dir = testing::temp_dir("vit_export");
  for (const double r : {0.25, 0.5, 0.75, 1.0}) {
    SCOPED_TRACE("r " + std::to_string(r) + " variant " + std::to_string(variant));
    const std::string path = dir + "/w.safetensors";
    SlimmableVit dense_model(export_slice(*model.net(), model.slice(model.grid().width_of(r))),
                             WidthGrid(static_cast<int64_t>(32 * r), 1.0, 1.0, 4), false);
    save_vit(dense_model, {{kMethodKey, "scala"}}, path);
    SlimmableVit loaded = load_vit(path);
    EXPECT_EQ(loaded.net()->config().dim, static_cast<int64_t>(32 * r));
    EXPECT_EQ(loaded.widths(), std::vector<double>{1.0});
    EXPECT_EQ(numel(*loaded.net()), vit_parameters(c, static_cast<int64_t>(32 * r)));
    EXPECT_TRUE(loaded.net()->config().private_norms.empty());
    const VitOutput a = model.forward(x, r);
    const VitOutput b = loaded.forward(x, 1.0);
    EXPECT_TRUE(torch::equal(a.cls, b.cls));
    EXPECT_TRUE(torch::equal(a.dist, b.dist));
    // A different width's logits differ (the comparison can fail).
    if (r < 1.0) {
      EXPECT_FALSE(torch::allclose(model.forward(x, 1.0).cls, b.cls));
    }
  }
 }
}

TEST_F(VitTest, LoadRejectsAFileOfAnotherKindOrWithABrokenDescription) {
  const std::string dir = testing::temp_dir("vit_bad");
  SlimmableVit model(trained_like_net(small_config()), WidthGrid(32, 0.25, 0.125, 4), true);
  save_vit(model, {{kMethodKey, "scala"}}, dir + "/m.safetensors");
  SlimmableVit back = load_vit(dir + "/m.safetensors");
  EXPECT_TRUE(back.isolated());
  EXPECT_FALSE(back.net()->config().fused_qkv);
  VitConfig fused_config = small_config();
  fused_config.fused_qkv = true;
  SlimmableVit fused(trained_like_net(fused_config), WidthGrid(32, 0.25, 0.125, 4), true);
  save_vit(fused, {{kMethodKey, "scala"}}, dir + "/f.safetensors");
  EXPECT_TRUE(load_vit(dir + "/f.safetensors").net()->config().fused_qkv);
  VitConfig switchable_config = small_config();
  switchable_config.width_scale = true;
  switchable_config.private_norms = {8, 16};
  SlimmableVit switchable(trained_like_net(switchable_config), WidthGrid(32, 0.25, 0.125, 4), true);
  save_vit(switchable, {{kMethodKey, "scala"}}, dir + "/s.safetensors");
  SlimmableVit switchable_back = load_vit(dir + "/s.safetensors");
  EXPECT_TRUE(switchable_back.net()->config().width_scale);
  EXPECT_EQ(switchable_back.net()->config().private_norms, (std::vector<int64_t>{8, 16}));
  EXPECT_FALSE(back.net()->config().width_scale);
  EXPECT_TRUE(back.net()->config().private_norms.empty());
  {
    const torch::Tensor x = random_images(2);
    EXPECT_TRUE(torch::equal(switchable.forward(x, 0.25).cls, switchable_back.forward(x, 0.25).cls));
  }
  // A malformed list (written as run metadata, which save_vit leaves as given when the model has
  // no private norms, so the file is otherwise intact) is a ModelError naming the key.
  for (const char* broken : {"8,,16", "8,x", "16,8", "8,32", ""}) {
    save_vit(model, {{kMethodKey, "scala"}, {"septa.nn.vit.private_norms", broken}},
             dir + "/broken.safetensors");
    try {
      load_vit(dir + "/broken.safetensors");
      ADD_FAILURE() << "no error for '" << broken << "'";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("private"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(back.grid().size(), 7);
  std::string bytes = testing::read_file(dir + "/m.safetensors");
  const size_t at = bytes.find("\"septa.nn.vit.heads\":\"4\"");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 22] = '5';  // heads 5 does not divide 32 (and the header checksum breaks)
  testing::write_file(dir + "/bad.safetensors", bytes);
  EXPECT_THROW(load_vit(dir + "/bad.safetensors"), ModelError);
  EXPECT_THROW(load_vit(dir + "/missing.safetensors"), IoError);
}

}  // namespace
}  // namespace septa::nn
