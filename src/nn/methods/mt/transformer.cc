#include "nn/methods/mt/transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "nn/methods/mt/tokenizer.h"

namespace septa::nn::mt {

TranslatorImpl::TranslatorImpl(const TranslatorOptions& o) : options(o) {
  embed = register_module("embed", torch::nn::Embedding(o.vocab, o.dim));
  positions = register_module("positions", torch::nn::Embedding(o.max_len + 1, o.dim));
  const auto encoder_layer = torch::nn::TransformerEncoderLayer(
      torch::nn::TransformerEncoderLayerOptions(o.dim, o.heads).dim_feedforward(o.ff).dropout(0.0));
  encoder = register_module("encoder", torch::nn::TransformerEncoder(encoder_layer, o.layers));
  const auto decoder_layer = torch::nn::TransformerDecoderLayer(
      torch::nn::TransformerDecoderLayerOptions(o.dim, o.heads).dim_feedforward(o.ff).dropout(0.0));
  decoder = register_module("decoder", torch::nn::TransformerDecoder(decoder_layer, o.layers));
  final_norm = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim})));
  torch::nn::init::normal_(embed->weight, /*mean=*/0.0, /*std=*/std::pow(o.dim, -0.5));
}

namespace {
// x [B][L] -> embeddings [L][B][E]: sqrt(E) * embed(x) + positions(0..L-1)
torch::Tensor embed_sequence(TranslatorImpl& m, const torch::Tensor& x) {
  const auto length = x.size(1);
  const auto pos = torch::arange(length, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
  const auto e = m.embed(x) * std::sqrt(static_cast<double>(m.options.dim)) + m.positions(pos).unsqueeze(0);
  return e.transpose(0, 1);
}
}  // namespace

torch::Tensor TranslatorImpl::encode(const torch::Tensor& src) {
  return encoder->forward(embed_sequence(*this, src), /*src_mask=*/torch::Tensor(),
                          /*src_key_padding_mask=*/src.eq(kPadId));
}

torch::Tensor TranslatorImpl::decode(const torch::Tensor& tgt_in, const torch::Tensor& memory,
                                     const torch::Tensor& src) {
  const auto length = tgt_in.size(1);
  const auto causal = torch::nn::TransformerImpl::generate_square_subsequent_mask(length).to(tgt_in.device());
  auto h = decoder->forward(embed_sequence(*this, tgt_in), memory, causal, /*memory_mask=*/torch::Tensor(),
                   /*tgt_key_padding_mask=*/tgt_in.eq(kPadId), /*memory_key_padding_mask=*/src.eq(kPadId));
  h = final_norm(h.transpose(0, 1));  // [B][T][E]
  return torch::matmul(h, embed->weight.t());  // [B][T][V]
}

namespace {
// x [B][n][E] -> [B][H][n][d]
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads) {
  return x.reshape({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}
// x [B][H][n][d] -> [B][n][E]
torch::Tensor merge_heads(const torch::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}
// Scaled dot-product attention of one query per row (Vaswani et al. 2017, eq. 1), q already
// scaled by 1/sqrt(d) as libtorch's multi_head_attention_forward does:
//   attention(q, K, V) = softmax(q K^T [-inf at masked keys]) V
// q [B][H][1][d], k and v [B or 1][H][n][d], mask [B or 1][1][1][n] or undefined -> [B][H][1][d]
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& mask) {
  auto scores = torch::matmul(q, k.transpose(-2, -1));
  if (mask.defined()) scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, /*dim=*/-1), v);
}
}  // namespace

void DecoderCache::select(const torch::Tensor& rows) {
  for (auto* cached : {&self_k, &self_v})
    for (auto& x : *cached) x = x.index_select(/*dim=*/0, rows);
}

DecoderCache TranslatorImpl::start_decoding(const torch::Tensor& memory, const torch::Tensor& src) {
  DecoderCache cache;
  const int64_t E = options.dim, H = options.heads;
  const auto m = memory.transpose(0, 1);  // [B][S][E]
  for (const auto& module : *decoder->layers) {
    auto& attention = module->as<torch::nn::TransformerDecoderLayerImpl>()->multihead_attn;
    // libtorch packs the projections as in_proj_weight [3E][E] = (W_q; W_k; W_v)
    const auto kv = torch::linear(m, attention->in_proj_weight.slice(0, E), attention->in_proj_bias.slice(0, E))
                        .chunk(2, /*dim=*/-1);
    cache.cross_k.push_back(split_heads(kv[0], H));
    cache.cross_v.push_back(split_heads(kv[1], H));
    cache.self_k.emplace_back();
    cache.self_v.emplace_back();
  }
  cache.memory_pad = src.eq(kPadId).view({src.size(0), 1, 1, src.size(1)});
  return cache;
}

// One post-norm decoder layer (libtorch's TransformerDecoderLayer, ReLU, no dropout) on the
// newest position x only, its keys and values appended to the cache:
//   x = norm1(x + SelfAttention(x, prefix)); x = norm2(x + CrossAttention(x, memory));
//   x = norm3(x + W2 relu(W1 x + b1) + b2)
torch::Tensor TranslatorImpl::decode_step(const torch::Tensor& tokens, DecoderCache& cache) {
  const int64_t E = options.dim, H = options.heads;
  const double scaling = std::pow(static_cast<double>(E / H), -0.5);
  auto x = (embed(tokens) * std::sqrt(static_cast<double>(E)) + positions->weight[cache.length]).unsqueeze(1);
  size_t i = 0;
  for (const auto& module : *decoder->layers) {  // x [B][1][E]
    auto* layer = module->as<torch::nn::TransformerDecoderLayerImpl>();
    auto& self = layer->self_attn;
    const auto qkv = torch::linear(x, self->in_proj_weight, self->in_proj_bias).chunk(3, /*dim=*/-1);
    const auto k = split_heads(qkv[1], H), v = split_heads(qkv[2], H);
    cache.self_k[i] = cache.self_k[i].defined() ? torch::cat({cache.self_k[i], k}, /*dim=*/2) : k;
    cache.self_v[i] = cache.self_v[i].defined() ? torch::cat({cache.self_v[i], v}, /*dim=*/2) : v;
    auto a = attend(split_heads(qkv[0], H) * scaling, cache.self_k[i], cache.self_v[i], torch::Tensor());
    x = layer->norm1(x + self->out_proj(merge_heads(a)));
    auto& cross = layer->multihead_attn;
    const auto q = torch::linear(x, cross->in_proj_weight.slice(0, 0, E), cross->in_proj_bias.slice(0, 0, E));
    a = attend(split_heads(q, H) * scaling, cache.cross_k[i], cache.cross_v[i], cache.memory_pad);
    x = layer->norm2(x + cross->out_proj(merge_heads(a)));
    x = layer->norm3(x + layer->linear2(torch::relu(layer->linear1(x))));
    ++i;
  }
  ++cache.length;
  return torch::matmul(final_norm(x.squeeze(1)), embed->weight.t());  // [B][V]
}

torch::Tensor translation_loss(Translator& model, const torch::Tensor& src, const torch::Tensor& tgt,
                               double smoothing) {
  const auto tgt_in = tgt.slice(/*dim=*/1, 0, tgt.size(1) - 1);
  const auto tgt_out = tgt.slice(/*dim=*/1, 1);
  const auto logits = model->forward(src, tgt_in);
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(2)}), tgt_out.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kPadId).label_smoothing(smoothing));
}

torch::Tensor pad_batch(const std::vector<std::vector<int>>& sequences, int64_t max_len) {
  int64_t longest = 1;
  for (const auto& s : sequences) longest = std::max<int64_t>(longest, std::min<int64_t>(s.size(), max_len));
  auto out = torch::full({static_cast<int64_t>(sequences.size()), longest}, kPadId, torch::kLong);
  auto a = out.accessor<int64_t, 2>();
  for (size_t i = 0; i < sequences.size(); ++i) {
    const auto& s = sequences[i];
    const int64_t n = std::min<int64_t>(s.size(), max_len);
    for (int64_t j = 0; j < n; ++j) a[i][j] = s[j];
    if (static_cast<int64_t>(s.size()) > max_len) a[i][n - 1] = s.back();
  }
  return out;
}

namespace {

// The decoding score of piece v after prefix y for source x (greedy and beam search):
//   s(v) = log p(v | y, x) - eos_penalty [v = eos] + copy_bonus [v occurs in x, v != eos, pad]
// copy_bonus favours passing source pieces through (identifiers, options, paths that a translation
// keeps); both are chosen on dev (`eval --eval-dev`).
// in_source: [B][V] floats, 1 where piece v occurs in source row b (pads and eos excluded).
torch::Tensor source_pieces(const torch::Tensor& src, int64_t vocab) {
  auto mask = torch::zeros({src.size(0), vocab}, src.options().dtype(torch::kFloat));
  mask.scatter_(/*dim=*/1, src, 1.0);
  mask.select(/*dim=*/1, kPadId).zero_();
  mask.select(/*dim=*/1, kEosId).zero_();
  return mask;
}

// Greedy: argmax at every step for the whole batch until every row has produced eos.
std::vector<std::vector<int>> greedy(Translator& model, const torch::Tensor& src, int tag, double eos_penalty,
                                     double copy_bonus, bool use_cache) {
  const int64_t B = src.size(0), T = model->options.max_len;
  const auto memory = model->encode(src);
  torch::Tensor bonus;  // [B][V]
  if (copy_bonus != 0) bonus = source_pieces(src, model->options.vocab).mul_(copy_bonus);
  auto tgt = torch::full({B, 1}, tag, torch::TensorOptions().dtype(torch::kLong).device(src.device()));
  auto done = torch::zeros({B}, torch::TensorOptions().dtype(torch::kBool).device(src.device()));
  DecoderCache cache;
  if (use_cache) cache = model->start_decoding(memory, src);
  for (int64_t t = 0; t < T; ++t) {
    // [B][V]; a finished row's pads are fed on (its outputs are ignored)
    auto logits = use_cache ? model->decode_step(tgt.select(/*dim=*/1, t), cache)
                            : model->decode(tgt, memory, src).select(1, t);
    // argmax of log p - penalty [v = eos]: log p and the logits differ by a constant per row
    if (eos_penalty != 0) logits.select(/*dim=*/1, kEosId).sub_(eos_penalty);
    if (copy_bonus != 0) logits.add_(bonus);
    auto next = logits.argmax(/*dim=*/1);
    next = torch::where(done, torch::full_like(next, kPadId), next);
    tgt = torch::cat({tgt, next.unsqueeze(1)}, /*dim=*/1);
    done = done.logical_or(next.eq(kEosId));
    if (done.all().item<bool>()) break;
  }
  const auto cpu = tgt.cpu();
  auto a = cpu.accessor<int64_t, 2>();
  std::vector<std::vector<int>> out(B);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 1; j < cpu.size(1); ++j) {
      if (a[i][j] == kEosId || a[i][j] == kPadId) break;
      out[i].push_back(static_cast<int>(a[i][j]));
    }
  return out;
}

// Beam search for one source [1][S]: keep the `beam` best prefixes by sum log p; a hypothesis ends
// at eos; the result maximises sum log p / length over finished (or, at max_len, open) ones.
std::vector<int> beam_search(Translator& model, const torch::Tensor& src, int tag, int beam, double eos_penalty,
                             double copy_bonus, bool use_cache) {
  const int64_t T = model->options.max_len;
  const auto memory1 = model->encode(src);  // [S][1][E]
  torch::Tensor bonus;  // [1][V]
  if (copy_bonus != 0) bonus = source_pieces(src, model->options.vocab).mul_(copy_bonus).cpu();
  struct Hyp { std::vector<int64_t> tokens; double score; int64_t parent; };
  std::vector<Hyp> open = {{{tag}, 0.0, 0}}, finished;
  DecoderCache cache;  // rows: the open hypotheses; cross-attention rows 1 (broadcast)
  if (use_cache) cache = model->start_decoding(memory1, src);
  for (int64_t t = 0; t < T && !open.empty(); ++t) {
    const int64_t K = static_cast<int64_t>(open.size());
    torch::Tensor logits;  // [K][V]
    if (use_cache) {
      auto last = torch::empty({K}, torch::kLong);
      for (int64_t k = 0; k < K; ++k) last[k] = open[k].tokens.back();
      logits = model->decode_step(last.to(src.device()), cache);
    } else {
      auto tgt = torch::empty({K, t + 1}, torch::kLong);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j <= t; ++j) tgt[k][j] = open[k].tokens[j];
      tgt = tgt.to(src.device());
      const auto memory = memory1.expand({memory1.size(0), K, memory1.size(2)});
      logits = model->decode(tgt, memory, src.expand({K, src.size(1)})).select(1, t);
    }
    auto logp = torch::log_softmax(logits, /*dim=*/1).cpu();  // [K][V]
    if (eos_penalty != 0) logp.select(/*dim=*/1, kEosId).sub_(eos_penalty);
    if (copy_bonus != 0) logp.add_(bonus);  // broadcast over the K open hypotheses
    const auto top = logp.topk(beam, /*dim=*/1);
    const auto values = std::get<0>(top), indices = std::get<1>(top);
    std::vector<Hyp> candidates;
    for (int64_t k = 0; k < K; ++k)
      for (int b = 0; b < beam; ++b) {
        Hyp h = open[k];
        h.parent = k;
        h.tokens.push_back(indices[k][b].item<int64_t>());
        h.score += values[k][b].item<double>();
        candidates.push_back(std::move(h));
      }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Hyp& a, const Hyp& b) { return a.score > b.score; });
    open.clear();
    for (auto& h : candidates) {
      if (static_cast<int>(open.size()) >= beam) break;
      if (h.tokens.back() == kEosId) finished.push_back(std::move(h));
      else open.push_back(std::move(h));
    }
    if (static_cast<int>(finished.size()) >= beam) break;
    if (use_cache && !open.empty()) {
      auto rows = torch::empty({static_cast<int64_t>(open.size())}, torch::kLong);
      for (size_t k = 0; k < open.size(); ++k) rows[k] = open[k].parent;
      cache.select(rows.to(src.device()));
    }
  }
  finished.insert(finished.end(), open.begin(), open.end());
  const Hyp* best = nullptr;
  double best_score = -1e300;
  for (const auto& h : finished) {
    const double normalised = h.score / static_cast<double>(h.tokens.size() - 1);
    if (normalised > best_score) best_score = normalised, best = &h;
  }
  std::vector<int> out;
  for (size_t j = 1; best && j < best->tokens.size(); ++j) {
    if (best->tokens[j] == kEosId) break;
    out.push_back(static_cast<int>(best->tokens[j]));
  }
  return out;
}

}  // namespace

std::vector<std::vector<int>> translate(Translator& model, const std::vector<std::vector<int>>& sources,
                                        int tag, int beam, int64_t batch, const torch::Device& device,
                                        double eos_penalty, double copy_bonus, bool cache) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<std::vector<int>> out;
  out.reserve(sources.size());
  for (size_t start = 0; start < sources.size(); start += batch) {
    const size_t end = std::min(sources.size(), start + static_cast<size_t>(batch));
    const std::vector<std::vector<int>> chunk(sources.begin() + start, sources.begin() + end);
    if (beam <= 1) {
      const auto result = greedy(model, pad_batch(chunk, model->options.max_len).to(device), tag, eos_penalty, copy_bonus, cache);
      out.insert(out.end(), result.begin(), result.end());
    } else {
      for (const auto& s : chunk)
        out.push_back(beam_search(model, pad_batch({s}, model->options.max_len).to(device), tag, beam, eos_penalty, copy_bonus, cache));
    }
  }
  model->train();
  return out;
}

}  // namespace septa::nn::mt
