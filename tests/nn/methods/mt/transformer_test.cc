// The transformer translator (transformer.cc): training on a few pairs, greedy and beam
// decoding, the key/value cache, padding, and the clipped multi-tensor Adam step.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "nn/checkpoint.h"
#include "nn/foreach_clip.h"
#include "nn/methods/mt/tokenizer.h"
#include "nn/methods/mt/transformer.h"

namespace septa::nn::mt {
namespace {

// A small translator's options: vocabulary, width, heads, feed-forward width, layers, max length.
TranslatorOptions translator_options(int vocab, int dim, int heads, int ff, int layers, int max_len) {
  TranslatorOptions o;
  o.vocab = vocab, o.dim = dim, o.heads = heads, o.ff = ff, o.layers = layers, o.max_len = max_len;
  return o;
}

TEST(TranslatorTest, LearnsAFewPairsAndGreedyAndBeamDecodeThem) {
  torch::manual_seed(3);
  const TranslatorOptions o = translator_options(/*vocab=*/12, /*dim=*/32, /*heads=*/2, /*ff=*/64, /*layers=*/1, /*max_len=*/8);
  Translator model(o);
  // sources -> targets over ids 4..11 (0 unk, 1 pad, 2 eos, 3 the tag)
  const std::vector<std::vector<int>> src = {{4, 5, 2}, {6, 7, 8, 2}, {9, 2}, {10, 11, 4, 2}};
  const std::vector<std::vector<int>> out = {{5, 4}, {8, 7, 6}, {9, 9}, {4, 11, 10}};
  std::vector<std::vector<int>> tgt;
  for (const auto& t : out) {
    std::vector<int> row = {3};
    row.insert(row.end(), t.begin(), t.end());
    row.push_back(kEosId);
    tgt.push_back(row);
  }
  const auto s = pad_batch(src, o.max_len), t = pad_batch(tgt, o.max_len + 1);
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(3e-3));
  double loss = 0;
  for (int step = 0; step < 300; ++step) {
    adam.zero_grad();
    auto l = translation_loss(model, s, t, /*smoothing=*/0.0);
    l.backward();
    adam.step();
    loss = l.item<double>();
  }
  EXPECT_LT(loss, 0.05);
  EXPECT_EQ(translate(model, src, 3, /*beam=*/1, /*batch=*/3, torch::kCPU), out);
  EXPECT_EQ(translate(model, src, 3, /*beam=*/3, /*batch=*/3, torch::kCPU), out);
  // --eos-penalty: a small one keeps these confident outputs; the largest (20) makes eos never the
  // argmax, so greedy runs to max_len and its output begins with the unpenalised one.
  EXPECT_EQ(translate(model, src, 3, /*beam=*/1, /*batch=*/3, torch::kCPU, /*eos_penalty=*/0.1), out);
  const auto longest = translate(model, src, 3, /*beam=*/1, /*batch=*/3, torch::kCPU, /*eos_penalty=*/20);
  ASSERT_EQ(longest.size(), out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(static_cast<int64_t>(longest[i].size()), o.max_len) << i;
    EXPECT_TRUE(std::equal(out[i].begin(), out[i].end(), longest[i].begin())) << i;
  }
}

TEST(TranslatorTest, CopyBonusPassesSourcePiecesThrough) {
  // An untrained model's outputs are arbitrary pieces (run to max_len by the largest eos penalty);
  // with the largest --copy-bonus (20, far above the spread of its log-probabilities) every piece it
  // writes occurs in its source, by greedy and beam search alike.
  torch::manual_seed(5);
  const TranslatorOptions o = translator_options(/*vocab=*/40, /*dim=*/16, /*heads=*/2, /*ff=*/32, /*layers=*/1, /*max_len=*/6);
  Translator model(o);
  const std::vector<std::vector<int>> src = {{4, 5, 2}, {30, 31, 32, 2}, {17, 2}, {9, 38, 21, 2}};
  auto outside = [&](const std::vector<std::vector<int>>& outputs) {
    int n = 0;
    for (size_t i = 0; i < outputs.size(); ++i)
      for (int v : outputs[i]) n += std::find(src[i].begin(), src[i].end() - 1, v) == src[i].end() - 1;
    return n;
  };
  const auto plain = translate(model, src, 3, /*beam=*/1, /*batch=*/4, torch::kCPU, /*eos_penalty=*/20);
  ASSERT_GT(outside(plain), 0);  // the precondition: without the bonus it writes other pieces
  EXPECT_EQ(translate(model, src, 3, 1, 4, torch::kCPU, /*eos_penalty=*/20, /*copy_bonus=*/0), plain);
  for (int beam : {1, 3}) {
    const auto copied = translate(model, src, 3, beam, /*batch=*/4, torch::kCPU, /*eos_penalty=*/20,
                                  /*copy_bonus=*/20);
    ASSERT_EQ(copied.size(), src.size());
    EXPECT_EQ(outside(copied), 0) << "beam " << beam;
    for (size_t i = 0; i < copied.size(); ++i) EXPECT_EQ(static_cast<int64_t>(copied[i].size()), o.max_len) << i;
  }
}

TEST(TranslatorTest, OverfitsTwentyPairsToExactReproduction) {
  // A bug detector for masking, teacher forcing, positions and decoding: 20 random pairs, each
  // target the source reversed under a fixed substitution, learnt exactly by a tiny model.
  torch::manual_seed(11);
  const TranslatorOptions o = translator_options(/*vocab=*/24, /*dim=*/64, /*heads=*/4, /*ff=*/128, /*layers=*/2, /*max_len=*/10);
  Translator model(o);
  std::mt19937 rng(4);
  std::vector<std::vector<int>> src, out, tgt;
  for (int i = 0; i < 20; ++i) {
    std::vector<int> s, t;
    const int n = 2 + static_cast<int>(rng() % 5);
    for (int j = 0; j < n; ++j) s.push_back(4 + static_cast<int>(rng() % 20));
    for (int j = n - 1; j >= 0; --j) t.push_back(4 + (s[j] - 4 + 7) % 20);
    s.push_back(kEosId);
    out.push_back(t);
    t.insert(t.begin(), 3);
    t.push_back(kEosId);
    src.push_back(s), tgt.push_back(t);
  }
  const auto s = pad_batch(src, o.max_len), t = pad_batch(tgt, o.max_len + 1);
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(2e-3));
  for (int step = 0; step < 400; ++step) {
    adam.zero_grad();
    translation_loss(model, s, t, /*smoothing=*/0.1).backward();
    adam.step();
  }
  EXPECT_EQ(translate(model, src, 3, /*beam=*/1, /*batch=*/7, torch::kCPU), out);
  EXPECT_EQ(translate(model, src, 3, /*beam=*/4, /*batch=*/7, torch::kCPU), out);
}

TEST(TranslatorTest, CachedDecodingEqualsRecomputingEveryPrefix) {
  // The key/value cache against the full recomputation, on a model trained briefly (so its
  // outputs are neither uniform nor trivially eos): (a) decode_step's logits equal decode()'s last
  // position at every step of a padded batch of sources of different lengths; (b) greedy (two
  // batches, padded) and beam search give the same tokens with and without the cache, also with
  // an EOS penalty and a copy bonus (20: outputs run to max_len, or only of source pieces).
  torch::manual_seed(13);
  const TranslatorOptions o = translator_options(/*vocab=*/30, /*dim=*/32, /*heads=*/4, /*ff=*/64, /*layers=*/2, /*max_len=*/12);
  Translator model(o);
  std::mt19937 rng(9);
  std::vector<std::vector<int>> src, tgt;
  for (int i = 0; i < 11; ++i) {
    std::vector<int> s, t = {3};
    const int n = 1 + static_cast<int>(rng() % 8);
    for (int j = 0; j < n; ++j) s.push_back(4 + static_cast<int>(rng() % 26));
    for (int j = n - 1; j >= 0; j -= 2) t.push_back(4 + (s[j] + 3) % 26);
    s.push_back(kEosId), t.push_back(kEosId);
    src.push_back(s), tgt.push_back(t);
  }
  const auto s = pad_batch(src, o.max_len), t = pad_batch(tgt, o.max_len + 1);
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(2e-3));
  for (int step = 0; step < 60; ++step) {
    adam.zero_grad();
    translation_loss(model, s, t, /*smoothing=*/0.1).backward();
    adam.step();
  }
  {
    torch::NoGradGuard no_grad;
    model->eval();
    const auto memory = model->encode(s);
    auto cache = model->start_decoding(memory, s);
    auto prefix = torch::full({s.size(0), 1}, 3, torch::kLong);
    for (int64_t step = 0; step < o.max_len; ++step) {
      const auto full = model->decode(prefix, memory, s).select(1, step);
      const auto cached = model->decode_step(prefix.select(1, step), cache);
      ASSERT_TRUE(torch::allclose(full, cached, 1e-4, 1e-5)) << "step " << step;
      prefix = torch::cat({prefix, full.argmax(1, /*keepdim=*/true)}, 1);
    }
    model->train();
  }
  int differ = 0;
  for (const auto& [eos_penalty, copy_bonus] : std::vector<std::pair<double, double>>{{0, 0}, {20, 0}, {0, 20}, {2, 1}})
    for (int beam : {1, 3}) {
      const auto cached = translate(model, src, 3, beam, /*batch=*/6, torch::kCPU, eos_penalty, copy_bonus, true);
      const auto full = translate(model, src, 3, beam, /*batch=*/6, torch::kCPU, eos_penalty, copy_bonus, false);
      EXPECT_EQ(cached, full) << "beam " << beam << " eos penalty " << eos_penalty << " copy bonus " << copy_bonus;
      differ += cached != translate(model, src, 3, beam, 6, torch::kCPU);
    }
  EXPECT_GT(differ, 0);  // the options change some outputs: the comparison covers them
  size_t tokens = 0;
  for (const auto& o : translate(model, src, 3, 1, 6, torch::kCPU)) tokens += o.size();
  EXPECT_GT(tokens, 2 * src.size());  // and the plain outputs are not just eos
}

TEST(TranslatorTest, PaddingDoesNotChangeTheLoss) {
  // A pair alone and the same pair padded inside a batch with a longer one give the same logits.
  torch::manual_seed(1);
  const TranslatorOptions o = translator_options(/*vocab=*/10, /*dim=*/16, /*heads=*/2, /*ff=*/32, /*layers=*/1, /*max_len=*/8);
  Translator model(o);
  model->eval();
  const auto alone = model->forward(pad_batch({{4, 5, 2}}, 8), pad_batch({{3, 6}}, 9));
  const auto batch = model->forward(pad_batch({{4, 5, 2}, {4, 5, 6, 7, 2}}, 8), pad_batch({{3, 6}, {3, 6, 7}}, 9));
  EXPECT_TRUE(torch::allclose(alone[0], batch[0].slice(0, 0, 2), 1e-4, 1e-5));
}

TEST(TranslatorTest, ClippedAdamStepEqualsClipGradNormThenTorchAdam) {
  // The multi-tensor step against libtorch's clip_grad_norm_ + Adam::step on twin models, over
  // steps where the clipping bites (max_norm 0.05) and where it does not (max_norm 1e6), with a
  // learning rate that changes every step. Before each step the twin takes the reference's
  // weights, so both see the same gradients (entries whose gradient is rounding noise, such as
  // the attention's key bias, would otherwise get different full-size Adam updates) while the
  // moments stay each optimizer's own.
  const TranslatorOptions o = translator_options(/*vocab=*/14, /*dim=*/16, /*heads=*/2, /*ff=*/32, /*layers=*/1, /*max_len=*/8);
  const auto s = pad_batch({{4, 5, 2}, {6, 7, 8, 9, 2}}, o.max_len);
  const auto t = pad_batch({{3, 10, 11, 2}, {3, 12, 2}}, o.max_len + 1);
  for (const double max_norm : {0.05, 1e6}) {
    torch::manual_seed(7);
    Translator a(o);
    torch::manual_seed(7);
    Translator b(o);
    torch::optim::Adam reference(a->parameters(), torch::optim::AdamOptions(1e-2).betas({0.9, 0.98}));
    ForeachAdamW fused(b->parameters(), torch::optim::AdamWOptions(1e-2).betas({0.9, 0.98}).weight_decay(0));
    for (int step = 0; step < 6; ++step) {
      const double lr = 1e-2 * (step + 1) / 6.0;
      {
        torch::NoGradGuard no_grad;
        const auto pa = a->parameters(), pb = b->parameters();
        for (size_t i = 0; i < pa.size(); ++i) pb[i].copy_(pa[i]);
      }
      reference.zero_grad();
      translation_loss(a, s, t, 0.1).backward();
      const double norm_a = torch::nn::utils::clip_grad_norm_(a->parameters(), max_norm);
      for (auto& group : reference.param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      reference.step();
      for (auto& p : b->parameters()) p.mutable_grad() = torch::Tensor();
      translation_loss(b, s, t, 0.1).backward();
      fused.param_groups().front().options().set_lr(lr);
      const double norm_b = clipped_step(fused, max_norm);
      EXPECT_NEAR(norm_a, norm_b, 1e-5 * norm_a);
      if (max_norm < 1) {
        EXPECT_GT(norm_a, max_norm);  // the clipping is exercised
      }
      const auto pa = a->parameters(), pb = b->parameters();
      for (size_t i = 0; i < pa.size(); ++i)
        ASSERT_TRUE(torch::allclose(pa[i], pb[i], 1e-4, 1e-6)) << "step " << step << " tensor " << i;
    }
    // The state is torch's: the step count and the moments.
    const auto pa = a->parameters(), pb = b->parameters();
    auto& sa = static_cast<torch::optim::AdamParamState&>(
        *reference.state().at(state_key<decltype(reference.state())>(pa.back())));
    auto& sb = static_cast<torch::optim::AdamWParamState&>(
        *fused.state().at(state_key<decltype(fused.state())>(pb.back())));
    EXPECT_EQ(sb.step(), 6);
    EXPECT_EQ(sa.step(), sb.step());
    EXPECT_TRUE(torch::allclose(sa.exp_avg_sq(), sb.exp_avg_sq(), 1e-4, 1e-10));
  }
}

}  // namespace
}  // namespace septa::nn::mt
