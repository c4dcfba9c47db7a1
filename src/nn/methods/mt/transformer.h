// A small encoder-decoder transformer (Vaswani et al. 2017) for many directions at once: one
// shared subword vocabulary, the decoder starts from the target language's tag "<2xx>" (Johnson
// et al. 2017), so one model serves every direction it was trained on. Shared input embeddings,
// tied with the output projection; learned positions; post-norm layers (libtorch's).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace septa::nn::mt {

struct TranslatorOptions {
  int64_t vocab = 0;    // V: sentencepiece pieces (tags included)
  int64_t dim = 128;    // E
  int64_t heads = 4;
  int64_t ff = 256;     // feed-forward width
  int64_t layers = 2;   // encoder layers = decoder layers
  int64_t max_len = 48; // S, T: longest source / target in tokens (positions)
};

// Incremental decoding's state (a key/value cache): per decoder layer, the self-attention keys
// and values of the tokens decoded so far and the cross-attention keys and values of the memory,
// so each step feeds one token per row instead of recomputing the whole prefix.
struct DecoderCache {
  std::vector<torch::Tensor> self_k, self_v;    // per layer [B][H][t][d], d = E / H
  std::vector<torch::Tensor> cross_k, cross_v;  // per layer [B or 1][H][S][d]
  torch::Tensor memory_pad;                     // [B or 1][1][1][S], true at source pads
  int64_t length = 0;                           // t: tokens decoded so far (tag included)
  // Keeps the self-attention rows `rows` [K] (int64) in that order (beam search's survivors);
  // the cross-attention rows must then be 1 (broadcast) or already K.
  void select(const torch::Tensor& rows);
};

struct TranslatorImpl : torch::nn::Module {
  explicit TranslatorImpl(const TranslatorOptions& options);

  // src [B][S] (pad kPadId) -> memory [S][B][E]
  torch::Tensor encode(const torch::Tensor& src);
  // tgt_in [B][T] (tag first), memory [S][B][E], src [B][S] (for its padding) -> logits [B][T][V]
  torch::Tensor decode(const torch::Tensor& tgt_in, const torch::Tensor& memory, const torch::Tensor& src);
  // memory [S][B][E], src [B][S] -> an empty cache for decode_step
  DecoderCache start_decoding(const torch::Tensor& memory, const torch::Tensor& src);
  // tokens [B] (the token at position cache.length of every row) -> logits [B][V] of the next
  // token; appends the tokens' keys and values to the cache. The same logits as decode()'s last
  // position on the whole prefix (up to float rounding: other reduction orders).
  torch::Tensor decode_step(const torch::Tensor& tokens, DecoderCache& cache);
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& tgt_in) {
    return decode(tgt_in, encode(src), src);
  }

  TranslatorOptions options;
  torch::nn::Embedding embed{nullptr};      // [V][E], tied with the output projection
  torch::nn::Embedding positions{nullptr};  // [max_len + 1][E]
  torch::nn::TransformerEncoder encoder{nullptr};
  torch::nn::TransformerDecoder decoder{nullptr};
  torch::nn::LayerNorm final_norm{nullptr};
};
TORCH_MODULE(Translator);

// Mean token cross-entropy (label smoothing `smoothing`) of predicting tgt[:, 1:] from
// tgt[:, :-1]; pads are ignored. src [B][S], tgt [B][T + 1].
torch::Tensor translation_loss(Translator& model, const torch::Tensor& src, const torch::Tensor& tgt,
                               double smoothing);

// Decodes each source (token ids, no padding, eos included) into the language whose tag is
// `tag`; beam = 1 is greedy (batched), beam > 1 is beam search with length-normalised scores
// (sum log p / length). `eos_penalty` is subtracted from log p(eos) at every step (> 0: longer
// outputs); `copy_bonus` is added to log p(v) of every piece v of the source except eos and pad
// (> 0: source pieces passed through). Outputs exclude the tag and eos; at most max_len tokens.
// `cache` false recomputes every prefix at every step (the reference for the cached decoding).
std::vector<std::vector<int>> translate(Translator& model, const std::vector<std::vector<int>>& sources,
                                        int tag, int beam, int64_t batch, const torch::Device& device,
                                        double eos_penalty = 0.0, double copy_bonus = 0.0, bool cache = true);

// Sequences padded with kPadId into [N][L], L = longest (at most max_len; longer ones are cut
// and keep their last token, eos).
torch::Tensor pad_batch(const std::vector<std::vector<int>>& sequences, int64_t max_len);

}  // namespace septa::nn::mt
