// septa nn mt train | merge | eval: the study's training, merging and evaluation.
#include "nn/methods/mt/study.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "nn/checkpoint.h"
#include "nn/loop.h"
#include "nn/methods/mt/analysis.h"
#include "nn/methods/mt/metrics.h"
#include "nn/methods/mt/tokenizer.h"
#include "nn/methods/mt/transformer.h"
#include "nn/options.h"
#include "safetensors/safetensors.h"
#include "septa/error.h"
#include "septa/merge.h"
#include "septa/nn/mt.h"

namespace septa::nn::mt {

std::vector<Direction> all_directions(const Groups& groups) {
  std::vector<Direction> out;
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto in = to_english(groups, g), from = from_english(groups, g);
    out.insert(out.end(), in.begin(), in.end());
    out.insert(out.end(), from.begin(), from.end());
  }
  return out;
}
std::vector<Direction> to_english(const Groups& groups, size_t g) {
  std::vector<Direction> out;
  for (const auto& l : groups[g]) out.push_back({l, "en"});
  return out;
}
std::vector<Direction> from_english(const Groups& groups, size_t g) {
  std::vector<Direction> out;
  for (const auto& l : groups[g]) out.push_back({"en", l});
  return out;
}

namespace {
constexpr const char* kMergeMethods[] = {"ties", "linear", "task_arithmetic"};
constexpr const char* kMergeSettings[] = {"datm-ties", "datm-linear", "datm-ta"};
std::string model_file(const std::string& name) { return "models/" + name + ".safetensors"; }
std::string merged_dir(const std::string& method, size_t g) { return "merged/" + method + ".g" + std::to_string(g); }
}  // namespace

std::vector<std::pair<std::string, std::map<std::string, std::string>>> setting_models(const Groups& groups) {
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> s;
  const auto directions = all_directions(groups);
  auto each = [&](const std::string& setting, const std::function<std::string(const Direction&, size_t)>& pick) {
    std::map<std::string, std::string> m;
    for (size_t g = 0; g < groups.size(); ++g)
      for (const auto& d : all_directions({groups[g]})) m[d.name()] = pick(d, g);
    s.emplace_back(setting, m);
  };
  each("copy", [](const Direction&, size_t) { return std::string(); });
  each("pretrained", [](const Direction&, size_t) { return model_file("pretrain"); });
  each("multilingual", [](const Direction&, size_t) { return model_file("multi"); });
  each("separate", [](const Direction& d, size_t) { return model_file("sep." + d.name()); });
  each("groupwise", [](const Direction&, size_t g) { return model_file("group" + std::to_string(g)); });
  each("dat", [](const Direction& d, size_t g) {
    return d.target == "en" ? model_file("sep." + d.name()) : model_file("dat.en-g" + std::to_string(g));
  });
  for (size_t m = 0; m < 3; ++m)
    each(kMergeSettings[m], [m](const Direction& d, size_t g) {
      return d.target == "en" ? merged_dir(kMergeMethods[m], g) + "/model.safetensors"
                              : model_file("dat.en-g" + std::to_string(g));
    });
  return s;
}

namespace {

OptionSpec integer(const std::string& name, const std::string& def, double min, double max, const std::string& help) {
  OptionSpec o;
  o.name = name, o.type = OptionType::kInteger, o.default_value = def, o.min = min, o.max = max, o.help = help;
  return o;
}
OptionSpec real(const std::string& name, const std::string& def, double min, double max, const std::string& help) {
  OptionSpec o = integer(name, def, min, max, help);
  o.type = OptionType::kReal;
  o.min_open = true;
  return o;
}

OptionSpec closed(OptionSpec o) {
  o.min_open = false;
  return o;
}

}  // namespace

const MethodInfo& study_options() {
  static const MethodInfo info = [] {
    MethodInfo m;
    m.name = "mt";
    m.summary = "multilingual translation: pre-training, per-setting post-training, group-wise merging";
    m.options = {
        integer("vocab", "2000", 100, 64000, "sentencepiece pieces (shared by all languages)"),
        integer("dim", "128", 8, 4096, "transformer width E"),
        integer("heads", "4", 1, 64, "attention heads (must divide dim)"),
        integer("ff", "256", 8, 16384, "feed-forward width"),
        integer("layers", "2", 1, 24, "encoder layers = decoder layers"),
        integer("max-len", "48", 8, 512, "longest source / target in tokens (longer ones are cut)"),
        integer("pretrain-epochs", "2", 1, 1000, "epochs of pre-training on all directions"),
        integer("post-epochs", "1", 1, 1000, "epochs of each post-training (on its directions' data)"),
        integer("batch", "64", 1, 65536, "sentence pairs per step"),
        real("lr", "0.0005", 0, 1, "Adam learning rate of pre-training"),
        real("post-lr", "0.0003", 0, 1, "Adam learning rate of post-training (full fine-tuning)"),
        integer("warmup", "200", 0, 1000000, "steps of linear learning-rate warm-up (then linear decay to 0)"),
        closed(real("smoothing", "0.1", 0, 1, "label smoothing of the cross-entropy (0: none)")),
        integer("max-train", "5000", 0, 100000000, "training pairs per direction (0: all)"),
        integer("post-max-train", "0", 0, 100000000,
                "training pairs per direction of each post-training, the first of pre-training's (0: all of them)"),
        integer("test-limit", "300", 0, 100000000, "n-way test messages evaluated (0: all)"),
        integer("beam", "1", 1, 64, "beam width of decoding (1: greedy)"),
        real("density", "0.5", 0, 1, "TIES: fraction of each task vector kept"),
        real("ta-lambda", "0.5", 0, 10, "task arithmetic: scale of the summed task vectors"),
        integer("decode-batch", "64", 1, 65536, "messages decoded together (dev and test)"),
        integer("tf32", "1", 0, 1, "CUDA: float32 matrix products in TF32 (float32 sums); 0: full float32"),
        integer("dev-sample", "0", 0, 100000, "dev messages per direction decoded after every epoch (chrF on the log; 0: none)"),
        integer("seed", "1", 0, 2147483647, "seed of initialisation, data order and subsets"),
    };
    return m;
  }();
  return info;
}

namespace {

void make_dir(const std::string& path) { ::mkdir(path.c_str(), 0755); }
bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

TranslatorOptions model_options(const Options& o, int64_t vocab) {
  TranslatorOptions t;
  t.vocab = vocab;
  t.dim = o.integer("dim");
  t.heads = o.integer("heads");
  t.ff = o.integer("ff");
  t.layers = o.integer("layers");
  t.max_len = o.integer("max-len");
  if (t.dim % t.heads != 0)
    throw OptionError("--heads " + std::to_string(t.heads) + " must divide --dim " + std::to_string(t.dim));
  return t;
}

// Deterministic subset: the `limit` pairs with the smallest seeded hash of their source.
std::vector<Pair> subset(std::vector<Pair> pairs, int64_t limit, uint64_t seed) {
  if (limit <= 0 || static_cast<int64_t>(pairs.size()) <= limit) return pairs;
  std::vector<std::pair<char, size_t>> keys;
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t i = 0; i < pairs.size(); ++i) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (unsigned char c : pairs[i].source) h = (h ^ c) * 1099511628211ull;
    order.emplace_back(h, i);
  }
  std::sort(order.begin(), order.end());
  std::vector<Pair> out;
  for (int64_t i = 0; i < limit; ++i) out.push_back(pairs[order[i].second]);
  return out;
}

// Learning-rate factor of step k (0-based) of K: linear warm-up over W steps, then linear decay
// to 0 at K:  f(k) = (k + 1) / W for k < W,  (K - k) / (K - W) otherwise.
double schedule(int64_t k, int64_t warmup, int64_t total) {
  if (k < warmup) return static_cast<double>(k + 1) / static_cast<double>(warmup);
  return std::max(0.0, static_cast<double>(total - k) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
}

// The shared sentencepiece model of a study, trained into "<prefix>.model" on each English message
// once and every translation of the training pairs (`pairs_of(language)`), with every tag.
void train_shared_tokenizer(const std::function<const std::vector<Pair>&(const std::string&)>& pairs_of,
                            const Groups& groups, int vocab, const std::string& prefix,
                            const std::function<void(const std::string&)>& log) {
  std::vector<std::string> lines;
  std::set<std::string> english;
  for (const auto& language : languages(groups))
    for (const auto& p : pairs_of(language)) {
      if (english.insert(p.source).second) lines.push_back(p.source);
      lines.push_back(p.target);
    }
  auto all = languages(groups);
  all.insert(all.begin(), "en");
  log("sentencepiece: training on " + std::to_string(lines.size()) + " lines");
  train_tokenizer(lines, all, vocab, prefix);
}

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
                                          const torch::Device& device) {
  const auto length = torch::maximum(data.src.ne(kPadId).sum(1), data.tgt.ne(kPadId).sum(1)).contiguous();  // [N]
  const auto* L = length.data_ptr<int64_t>();
  std::vector<std::tuple<int64_t, uint64_t, int64_t>> keys;
  for (int64_t n = 0; n < data.size(); ++n) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (int shift = 0; shift < 64; shift += 8) h = (h ^ ((static_cast<uint64_t>(n) >> shift) & 0xff)) * 1099511628211ull;
    keys.emplace_back(L[n], h, n);
  }
  std::sort(keys.begin(), keys.end());
  std::vector<torch::Tensor> out;
  for (size_t start = 0; start < keys.size(); start += static_cast<size_t>(batch)) {
    const size_t end = std::min(keys.size(), start + static_cast<size_t>(batch));
    std::vector<int64_t> ids;
    for (size_t i = start; i < end; ++i) ids.push_back(std::get<2>(keys[i]));
    out.push_back(torch::tensor(ids, torch::kLong).to(device));
  }
  return out;
}

class Study {
 public:
  explicit Study(const StudyConfig& config)
      : config_(config),
        options_(study_options(), config.options),
        groups_(read_groups(config.corpus_dir)),
        device_(torch_device(resolve_device(config.device))) {
    if (config.dir.empty()) throw OptionError("--dir is required");
    model_options(options_, /*vocab=*/1);  // --heads must divide --dim: refused before any work
    set_threads(config.threads);
    if (device_.is_cuda())  // "high": TF32 tensor cores for float32 products; "highest": none
      at::globalContext().setFloat32MatmulPrecision(options_.integer("tf32") ? "high" : "highest");
    make_dir(config.dir);
    make_dir(config.dir + "/models");
    make_dir(config.dir + "/state");
    make_dir(config.dir + "/merged");
    make_dir(config.dir + "/hypotheses");
  }

  const Options& options() const { return options_; }
  const Groups& groups() const { return groups_; }
  std::string path(const std::string& relative) const { return config_.dir + "/" + relative; }

  void check_options_file() {
    const std::string file = path("options.txt");
    const std::string text = options_.canonical() + "\ncorpus=" + config_.corpus_dir + "\n";
    if (exists(file)) {
      std::ifstream in(file);
      std::stringstream saved;
      saved << in.rdbuf();
      if (config_.resume && saved.str() != text)
        throw OptionError(file + ": the study was started with other options:\n" + saved.str() +
                          "(--resume needs the same options)");
    }
    std::ofstream(file) << text;
  }

  Tokenizer& tokenizer() {
    if (!tokenizer_) {
      auto all = languages(groups_);
      all.insert(all.begin(), "en");
      tokenizer_ = std::make_unique<Tokenizer>(path("spm.model"), all);
    }
    return *tokenizer_;
  }

  void train_tokenizer_if_needed(const std::function<void(const std::string&)>& log) {
    if (config_.resume && exists(path("spm.model"))) return;
    if (!config_.tokenizer.empty()) {
      copy_tokenizer(config_.tokenizer, log);
      return;
    }
    train_tokenizer_into(path("spm"), log);
  }

  // Copies a given model to spm.model after checking it carries every language's tag.
  void copy_tokenizer(const std::string& from, const std::function<void(const std::string&)>& log) {
    if (!exists(from)) throw IoError(from + ": no such tokenizer model (--tokenizer)");
    auto all = languages(groups_);
    all.insert(all.begin(), "en");
    const Tokenizer check(from, all);
    std::ifstream in(from, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string tmp = path("spm.model.tmp");
    {
      std::ofstream out(tmp, std::ios::binary);
      out << bytes.str();
      if (!out) throw IoError(tmp + ": cannot write");
    }
    if (std::rename(tmp.c_str(), path("spm.model").c_str()) != 0) throw IoError(path("spm.model") + ": cannot write");
    tokenizer_.reset();
    log("sentencepiece: using " + from + " (" + std::to_string(check.vocab_size()) + " pieces)");
  }

  void train_tokenizer_into(const std::string& prefix, const std::function<void(const std::string&)>& log) {
    train_shared_tokenizer([this](const std::string& l) -> const std::vector<Pair>& { return train_pairs(l); }, groups_,
                           static_cast<int>(options_.integer("vocab")), prefix, log);
    tokenizer_.reset();
  }

  const std::vector<Pair>& train_pairs(const std::string& language) {
    auto it = pairs_.find(language);
    if (it == pairs_.end())
      it = pairs_.emplace(language, subset(read_pairs(config_.corpus_dir, language, "train"),
                                           options_.integer("max-train"), options_.seed()))
               .first;
    return it->second;
  }

  // Token ids of each text followed by eos.
  std::vector<std::vector<int>> encode(const std::vector<std::string>& texts) {
    auto ids = tokenizer().encode(texts);
    for (auto& row : ids) row.push_back(kEosId);
    return ids;
  }

  // The training pairs of `directions`, at most `limit` of each (0: all).
  Encoded encoded(const std::vector<Direction>& directions, int64_t limit) {
    std::vector<std::vector<int>> src, tgt;
    for (const auto& d : directions) {
      const bool into_english = d.target == "en";
      const int tag = tokenizer().tag(d.target);
      std::vector<std::string> from, to;
      const auto& pairs = train_pairs(into_english ? d.source : d.target);
      const size_t n = limit > 0 ? std::min<size_t>(limit, pairs.size()) : pairs.size();
      for (size_t i = 0; i < n; ++i) {
        const Pair& p = pairs[i];
        from.push_back(into_english ? p.target : p.source);
        to.push_back(into_english ? p.source : p.target);
      }
      for (auto& ids : encode(from)) src.push_back(std::move(ids));
      for (auto& ids : encode(to)) {
        ids.insert(ids.begin(), tag);
        tgt.push_back(std::move(ids));
      }
    }
    const int64_t max_len = options_.integer("max-len");
    return {pad_batch(src, max_len), pad_batch(tgt, max_len + 1)};
  }

  struct DevSet {
    std::vector<std::vector<int>> sources;  // token ids, eos last
    std::vector<std::string> source_text, references;
  };
  // A seeded sample of `limit` dev pairs of direction d (cached).
  const DevSet& dev_set(const Direction& d, int64_t limit) {
    auto it = dev_.find(d.name());
    if (it != dev_.end()) return it->second;
    const bool into_english = d.target == "en";
    DevSet set;
    for (const auto& p : subset(read_pairs(config_.corpus_dir, into_english ? d.source : d.target, "dev"), limit,
                                options_.seed())) {
      set.source_text.push_back(into_english ? p.target : p.source);
      set.references.push_back(into_english ? p.source : p.target);
    }
    set.sources = encode(set.source_text);
    return dev_.emplace(d.name(), std::move(set)).first->second;
  }

  Translator new_model(torch::Generator* generator) {
    Translator model{nullptr};
    *generator = seeded_build(options_.seed(), [&] {
      model = Translator(model_options(options_, tokenizer().vocab_size()));
    });
    return model;
  }

  Metadata metadata() const {
    return {{kMethodKey, "mt"}, {kOptionsKey, options_.canonical()}, {kSeedKey, std::to_string(options_.seed())}};
  }

  // Trains model `name` on `directions` from the base (or from scratch for the base itself).
  // False when stopped by the progress callback.
  bool train_model(const std::string& name, const std::vector<Direction>& directions, bool from_base,
                   const ProgressCallback& progress) {
    const std::string out = path(model_file(name));
    if (config_.resume && exists(out)) return true;
    torch::Generator generator;
    Translator model = new_model(&generator);
    if (from_base) Checkpoint::open(path(model_file("pretrain")), "mt-model").load_module("", *model);
    model->to(device_);
    const double lr = options_.real(from_base ? "post-lr" : "lr");
    torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(lr).betas({0.9, 0.98}));
    const Encoded data = encoded(directions, from_base ? options_.integer("post-max-train") : 0);
    const auto src_all = data.src.to(device_), tgt_all = data.tgt.to(device_);
    const auto src_len = src_all.ne(kPadId).sum(1), tgt_len = tgt_all.ne(kPadId).sum(1);
    const std::vector<torch::Tensor> batches = length_batches(data, options_.integer("batch"), options_.seed(), device_);
    Stage stage;
    stage.name = name;
    stage.epochs = static_cast<int>(options_.integer(from_base ? "post-epochs" : "pretrain-epochs"));
    stage.batch_size = 1;  // one fixed batch of similar lengths per step, in a new random order each epoch
    stage.examples = static_cast<int64_t>(batches.size());
    stage.generator = generator;
    const int64_t steps_per_epoch = stage.examples;
    const int64_t total_steps = steps_per_epoch * stage.epochs;
    const int64_t warmup = std::min<int64_t>(options_.integer("warmup"), total_steps / 2);
    const double smoothing = options_.real("smoothing");
    stage.step = [&](const torch::Tensor& which) {
      const torch::Tensor& batch = batches[which.item<int64_t>()];
      // The step count is Adam's (restored with its moments on --resume), so the schedule of a
      // resumed run equals an uninterrupted one's.
      const torch::Tensor p0 = model->parameters().front();
      const auto it = optimizer.state().find(state_key<decltype(optimizer.state())>(p0));
      const int64_t done =
          it == optimizer.state().end() ? 0 : static_cast<torch::optim::AdamParamState&>(*it->second).step();
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr * schedule(done, warmup, total_steps));
      const int64_t s = src_len.index_select(0, batch).max().item<int64_t>();
      const int64_t t = tgt_len.index_select(0, batch).max().item<int64_t>();
      const auto src = src_all.index_select(0, batch).slice(1, 0, s);
      const auto tgt = tgt_all.index_select(0, batch).slice(1, 0, t);
      optimizer.zero_grad();
      const auto loss = translation_loss(model, src, tgt, smoothing);
      loss.backward();
      torch::nn::utils::clip_grad_norm_(model->parameters(), /*max_norm=*/1.0);
      optimizer.step();
      return std::vector<double>{loss.item<double>()};
    };
    const int64_t dev_sample = options_.integer("dev-sample");
    if (dev_sample > 0)
      stage.evaluate = [&, dev_sample] {
        double model_sum = 0, copy_sum = 0;
        for (const auto& d : directions) {
          const auto& dev = dev_set(d, dev_sample);
          const auto ids = translate(model, dev.sources, tokenizer().tag(d.target), /*beam=*/1,
                                    options_.integer("decode-batch"), device_);
          model_sum += chrf(tokenizer().decode(ids), dev.references);
          copy_sum += chrf(dev.source_text, dev.references);
        }
        const double n = static_cast<double>(directions.size());
        return Metrics{{"dev_chrF", model_sum / n}, {"dev_copy_chrF", copy_sum / n}};
      };
    stage.modules = {model.get()};
    stage.optimizers = {&optimizer};
    RunContext ctx;
    ctx.device = device_;
    ctx.progress = progress;
    ctx.state_dir = path("state");
    ctx.resume = config_.resume;
    ctx.metadata = metadata();
    const StageOutcome outcome = run_stage(stage, ctx);
    if (!outcome.complete) return false;
    CheckpointWriter writer;
    writer.add_module("", *model);
    for (const auto& [k, v] : metadata()) writer.set(k, v);
    writer.set(kKindKey, "mt-model");
    std::string names;
    for (const auto& d : directions) names += (names.empty() ? "" : ",") + d.name();
    writer.set("septa.nn.mt.directions", names);
    writer.set("septa.nn.mt.examples", std::to_string(data.size()));
    writer.write(out);
    return !outcome.stopped;
  }

  // A model of the study: a septa nn checkpoint (models/) or a merged safetensors file (merged/).
  Translator load(const std::string& relative) {
    torch::Generator unused;
    Translator model = new_model(&unused);
    if (relative.rfind("models/", 0) == 0) {
      Checkpoint::open(path(relative), "mt-model").load_module("", *model);
    } else {
      const auto reader = safetensors::Reader::open(path(relative));
      torch::NoGradGuard no_grad;
      for (auto& item : model->named_parameters()) {
        const std::string& name = item.key();
        torch::Tensor& tensor = item.value();
        const auto values = reader.read_f32(name);
        if (static_cast<int64_t>(values.size()) != tensor.numel())
          throw ModelError(path(relative) + ": tensor '" + name + "' has the wrong size");
        tensor.copy_(torch::from_blob(const_cast<float*>(values.data()), tensor.sizes(), torch::kFloat32));
      }
    }
    model->to(device_);
    return model;
  }

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

void log_to(const ProgressCallback& progress, const std::string& line) {
  Progress p;
  p.stage = line;
  if (progress) progress(p);
}

}  // namespace

bool train(const StudyConfig& config, const ProgressCallback& progress) {
  Study study(config);
  study.check_options_file();
  study.train_tokenizer_if_needed([&](const std::string& line) { log_to(progress, line); });
  const Groups& groups = study.groups();
  const auto all = all_directions(groups);
  if (!study.train_model("pretrain", all, false, progress)) return false;
  if (!study.train_model("multi", all, true, progress)) return false;
  for (const auto& d : all)
    if (!study.train_model("sep." + d.name(), {d}, true, progress)) return false;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!study.train_model("group" + std::to_string(g), all_directions({groups[g]}), true, progress)) return false;
    if (!study.train_model("dat.en-g" + std::to_string(g), from_english(groups, g), true, progress)) return false;
  }
  return true;
}

void train_tokenizer(const std::string& corpus_dir, const OptionValues& options, const std::string& model_path,
                     const std::function<void(const std::string&)>& log) {
  const std::string suffix = ".model";
  if (model_path.size() <= suffix.size() || model_path.compare(model_path.size() - suffix.size(), suffix.size(), suffix))
    throw OptionError("the tokenizer's file must end in .model, not '" + model_path + "'");
  const Options o(study_options(), options);
  const Groups groups = read_groups(corpus_dir);
  std::map<std::string, std::vector<Pair>> pairs;
  train_shared_tokenizer(
      [&](const std::string& language) -> const std::vector<Pair>& {
        return pairs[language] = subset(read_pairs(corpus_dir, language, "train"), o.integer("max-train"), o.seed());
      },
      groups, static_cast<int>(o.integer("vocab")), model_path.substr(0, model_path.size() - suffix.size()), log);
}

void merge(const StudyConfig& config, const std::function<void(const std::string&)>& log) {
  Study study(config);
  const Groups& groups = study.groups();
  for (size_t g = 0; g < groups.size(); ++g)
    for (const char* method : kMergeMethods) {
      merge::MergeConfig m;
      m.method = merge::parse_method(method);
      m.base_model = study.path(model_file("pretrain"));
      const std::string m_name = method;
      if (m_name == "ties") m.density = study.options().real("density");
      if (m_name == "task_arithmetic") m.lambda = study.options().real("ta-lambda");
      m.weight = 1.0;
      m.threads = 1;
      m.sync = false;
      m.source = "septa nn mt merge";
      std::string yaml = "merge_method: " + m_name + "\nbase_model: " + m.base_model + "\nmodels:\n";
      for (const auto& d : to_english(groups, g)) {
        m.models.push_back({study.path(model_file("sep." + d.name())), std::nullopt, std::nullopt});
        yaml += "  - model: " + m.models.back().model + "\n";
      }
      yaml += "parameters: {weight: 1.0";
      if (m.density) yaml += ", density: " + std::to_string(*m.density);
      if (m_name == "task_arithmetic") yaml += ", lambda: " + std::to_string(m.lambda);
      yaml += "}\n";
      const std::string out = study.path(merged_dir(method, g));
      merge::run_merge(m, out);
      std::ofstream(out + ".yaml") << yaml;
      log("merged " + std::to_string(m.models.size()) + " X->en experts of group " + std::to_string(g) + " with " +
          m_name + " into " + out);
    }
}

std::string evaluate(const StudyConfig& config, const std::function<void(const std::string&)>& log) {
  Study study(config);
  const NwayTest test = read_nway(config.corpus_dir);
  const int64_t limit = study.options().integer("test-limit");
  const size_t S = limit > 0 ? std::min<size_t>(limit, test.english.size()) : test.english.size();
  if (S == 0) throw FormatError(config.corpus_dir + "/test.nway.tsv: no test messages");
  // The evaluated messages: the S with the smallest seeded hash of their English text (the file
  // is sorted, so its first S would be mostly messages that start with punctuation or digits).
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t i = 0; i < test.english.size(); ++i) {
    uint64_t h = 1469598103934665603ull ^ study.options().seed();
    for (unsigned char c : test.english[i]) h = (h ^ c) * 1099511628211ull;
    order.emplace_back(h, i);
  }
  std::sort(order.begin(), order.end());
  order.resize(S);
  auto text_of = [&](const std::string& language) {
    const auto& column = language == "en" ? test.english : test.by_language.at(language);
    std::vector<std::string> out;
    for (const auto& entry : order) out.push_back(column[entry.second]);
    return out;
  };
  {  // the evaluated messages of each language, line by line as in hypotheses/*.txt (for other scorers)
    auto all = languages(study.groups());
    all.insert(all.begin(), "en");
    for (const auto& language : all) {
      std::string text;
      for (const auto& line : text_of(language)) text += line + "\n";
      std::ofstream(study.path("hypotheses/ref." + language + ".txt")) << text;
    }
  }
  const int beam = static_cast<int>(study.options().integer("beam"));
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> hypotheses;  // (model, dir)
  const auto settings = setting_models(study.groups());
  std::map<std::string, std::vector<Direction>> needed;  // model -> its directions to decode
  for (const auto& [setting, models] : settings)
    for (const auto& d : all_directions(study.groups())) {
      const std::string& model = models.at(d.name());
      auto& list = needed[model];
      if (std::none_of(list.begin(), list.end(), [&](const Direction& x) { return x.name() == d.name(); }))
        list.push_back(d);
    }
  int64_t parameters = 0;
  for (const auto& [model_name, directions] : needed) {
    if (model_name.empty()) {
      for (const auto& d : directions) hypotheses[{model_name, d.name()}] = text_of(d.source);
      continue;
    }
    Translator model = study.load(model_name);
    parameters = 0;
    for (const auto& p : model->parameters()) parameters += p.numel();
    for (const auto& d : directions) {
      const auto sources = study.encode(text_of(d.source));
      const auto ids = translate(model, sources, study.tokenizer().tag(d.target), beam,
                                 study.options().integer("decode-batch"), study.device());
      auto& out = hypotheses[{model_name, d.name()}];
      out = study.tokenizer().decode(ids);
      std::string file_name = model_name.substr(0, model_name.rfind('.'));
      for (char& c : file_name)
        if (c == '/') c = '_';
      std::string text;
      for (const auto& line : out) text += line + "\n";
      std::ofstream(study.path("hypotheses/" + file_name + "." + d.name() + ".txt")) << text;
    }
    log("decoded " + std::to_string(directions.size()) + " directions with " + model_name);
  }
  std::string table = "setting\tdirection\tmodel\tchrF\tBLEU\n";
  std::string sizes = "setting\tmodels\tparameters\n";
  char line[256];
  for (const auto& [setting, models] : settings) {
    std::set<std::string> distinct;
    for (const auto& d : all_directions(study.groups())) {
      const std::string& model = models.at(d.name());
      if (!model.empty()) distinct.insert(model);
      const auto& hyp = hypotheses.at({model, d.name()});
      const auto ref = text_of(d.target);
      std::snprintf(line, sizeof line, "%s\t%s\t%s\t%.2f\t%.2f\n", setting.c_str(), d.name().c_str(),
                    model.empty() ? "-" : model.c_str(), chrf(hyp, ref), bleu(hyp, ref));
      table += line;
    }
    sizes += setting + "\t" + std::to_string(distinct.size()) + "\t" +
             std::to_string(static_cast<int64_t>(distinct.size()) * parameters) + "\n";
  }
  std::ofstream(study.path("results.tsv")) << table;
  std::ofstream(study.path("models.tsv")) << sizes;
  log("evaluated " + std::to_string(S) + " n-way test messages per direction (beam " + std::to_string(beam) + ")");
  return table;
}

std::string build_corpus(const CorpusRequest& request, const std::function<void(const std::string&)>& log) {
  CorpusConfig c;
  c.out_dir = request.out_dir;
  c.groups = parse_groups(request.groups, "--groups");
  c.locale_dir = request.locale_dir;
  c.dpkg_dir = request.dpkg_dir;
  c.dev_fraction = request.dev_fraction;
  c.test_fraction = request.test_fraction;
  c.max_per_package = request.max_per_package;
  c.seed = request.seed;
  build_corpus(c, log);
  std::ifstream in(c.out_dir + "/stats.tsv");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string analyse(const std::string& dir) { return analyse_results(dir); }

}  // namespace septa::nn::mt
