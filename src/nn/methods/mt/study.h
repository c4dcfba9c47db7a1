// A study directory and the training of its models (torch): options, the shared tokenizer, the
// encoded training pairs, one model's training from scratch or from the pre-trained base, and
// loading a trained or merged model. Used by septa nn mt train, merge and eval.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/checkpoint.h"
#include "nn/methods/mt/corpus.h"
#include "nn/methods/mt/settings.h"
#include "nn/methods/mt/tokenizer.h"
#include "nn/methods/mt/transformer.h"
#include "nn/options.h"
#include "septa/nn/mt.h"

namespace septa::nn::mt {

struct Encoded {
  torch::Tensor src;  // [N][S] padded
  torch::Tensor tgt;  // [N][T + 1]: tag, tokens, eos, padding
  int64_t size() const { return src.defined() ? src.size(0) : 0; }
};

// Length bucketing: the pairs sorted by (max(S_n, T_n), seeded hash of n) and cut into
// consecutive batches of `batch` pairs ([B] int64 indices each, on `device`), so a batch pads
// to about its own length instead of nearly max-len (token counts of the catalogs' messages
// average 14-19 against a cap of 48: random batches were two thirds padding).
std::vector<torch::Tensor> length_batches(const Encoded& data, int64_t batch, uint64_t seed,
                                          const torch::Device& device);

// The post-trained models in train order with their directions: multi, sep.<d> per direction,
// then group<g> and dat.en-g<g> per group.
std::vector<std::pair<std::string, std::vector<Direction>>> post_trained_models(const Groups& groups);
// Each model's part (1..parts) for `train --part I/N`, balanced by direction counts.
std::vector<int> part_of_models(const std::vector<std::pair<std::string, std::vector<Direction>>>& models, int parts);

class Study {
 public:
  explicit Study(const StudyConfig& config);

  const Options& options() const { return options_; }
  const Groups& groups() const { return groups_; }
  std::string path(const std::string& relative) const { return config_.dir + "/" + relative; }

  void check_options_file();

  Tokenizer& tokenizer();

  void train_tokenizer_if_needed(const std::function<void(const std::string&)>& log);

  // Copies a given model to spm.model after checking it carries every language's tag.
  void copy_tokenizer(const std::string& from, const std::function<void(const std::string&)>& log);

  void train_tokenizer_into(const std::string& prefix, const std::function<void(const std::string&)>& log);

  const std::vector<Pair>& train_pairs(const std::string& language);

  // Token ids of each text followed by eos.
  std::vector<std::vector<int>> encode(const std::vector<std::string>& texts);

  // The training pairs of `directions`, at most `limit` of each (0: all), then `copies` English
  // messages of pre-training copied as en->en pairs (source = target, the English tag).
  Encoded encoded(const std::vector<Direction>& directions, int64_t limit, int64_t copies = 0);

  // The first `n` distinct English messages of pre-training's pairs in a seeded order.
  std::vector<std::string> copy_messages(int64_t n);

  struct DevSet {
    std::vector<std::vector<int>> sources;  // token ids, eos last
    std::vector<std::string> source_text, references;
  };
  // A seeded sample of `limit` dev pairs of direction d (cached).
  const DevSet& dev_set(const Direction& d, int64_t limit);

  Translator new_model(torch::Generator* generator);

  Metadata metadata() const;

  // Trains model `name` on `directions` from the base (or from scratch for the base itself).
  // False when stopped by the progress callback.
  bool train_model(const std::string& name, const std::vector<Direction>& directions, bool from_base,
                   const ProgressCallback& progress);

  // A model of the study: a septa nn checkpoint (models/) or a merged safetensors file (merged/).
  Translator load(const std::string& relative);

  const torch::Device& device() const { return device_; }

 private:
  StudyConfig config_;
  Options options_;
  Groups groups_;
  torch::Device device_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::map<std::string, std::vector<Pair>> pairs_;
  std::map<std::string, DevSet> dev_;
};


}  // namespace septa::nn::mt
