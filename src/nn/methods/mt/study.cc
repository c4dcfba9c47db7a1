// septa nn mt train: a study directory, its tokenizer and the training of every setting's models.
#include "nn/methods/mt/study.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "nn/checkpoint.h"
#include "nn/foreach_clip.h"
#include "nn/loop.h"
#include "nn/methods/mt/metrics.h"
#include "safetensors/safetensors.h"
#include "septa/error.h"

namespace septa::nn::mt {

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

// The pairs ordered by a seeded hash of their source (FNV-1a over its bytes).
std::vector<size_t> hash_order(const std::vector<Pair>& pairs, uint64_t seed) {
  std::vector<std::pair<uint64_t, size_t>> order;
  for (size_t i = 0; i < pairs.size(); ++i) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (unsigned char c : pairs[i].source) h = (h ^ c) * 1099511628211ull;
    order.emplace_back(h, i);
  }
  std::sort(order.begin(), order.end());
  std::vector<size_t> out;
  for (const auto& entry : order) out.push_back(entry.second);
  return out;
}

// Deterministic subset: the `limit` pairs with the smallest seeded hash of their source (all of
// them, in file order, when there are at most `limit`).
std::vector<Pair> subset(std::vector<Pair> pairs, int64_t limit, uint64_t seed) {
  if (limit <= 0 || static_cast<int64_t>(pairs.size()) <= limit) return pairs;
  const auto order = hash_order(pairs, seed);
  std::vector<Pair> out;
  for (int64_t i = 0; i < limit; ++i) out.push_back(pairs[order[i]]);
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


void log_to(const ProgressCallback& progress, const std::string& line) {
  Progress p;
  p.stage = line;
  if (progress) progress(p);
}

}  // namespace

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

Study::Study(const StudyConfig& config)
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

void Study::check_options_file() {
  const std::string file = path("options.txt");
  const std::string text = options_.canonical() + "\ncorpus=" + config_.corpus_dir + "\n";
  if (exists(file)) {
    std::ifstream in(file);
    std::stringstream saved;
    saved << in.rdbuf();
    if ((config_.resume || config_.part > 0) && saved.str() != text)
      throw OptionError(file + ": the study was started with other options:\n" + saved.str() +
                        "(--resume and --part I/N with I >= 1 need the same options)");
  }
  if (config_.part == 0) std::ofstream(file) << text;  // parts 1..N run side by side: they only read it
}

Tokenizer& Study::tokenizer() {
  if (!tokenizer_) {
    auto all = languages(groups_);
    all.insert(all.begin(), "en");
    tokenizer_ = std::make_unique<Tokenizer>(path("spm.model"), all);
  }
  return *tokenizer_;
}

void Study::train_tokenizer_if_needed(const std::function<void(const std::string&)>& log) {
  if (config_.resume && exists(path("spm.model"))) return;
  if (!config_.tokenizer.empty()) {
    copy_tokenizer(config_.tokenizer, log);
    return;
  }
  train_tokenizer_into(path("spm"), log);
}

void Study::copy_tokenizer(const std::string& from, const std::function<void(const std::string&)>& log) {
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

void Study::train_tokenizer_into(const std::string& prefix, const std::function<void(const std::string&)>& log) {
  train_shared_tokenizer([this](const std::string& l) -> const std::vector<Pair>& { return train_pairs(l); }, groups_,
                         static_cast<int>(options_.integer("vocab")), prefix, log);
  tokenizer_.reset();
}

const std::vector<Pair>& Study::train_pairs(const std::string& language) {
  auto it = pairs_.find(language);
  if (it == pairs_.end())
    it = pairs_.emplace(language, subset(read_pairs(config_.corpus_dir, language, "train"),
                                         options_.integer("max-train"), options_.seed()))
             .first;
  return it->second;
}

std::vector<std::vector<int>> Study::encode(const std::vector<std::string>& texts) {
  auto ids = tokenizer().encode(texts);
  for (auto& row : ids) row.push_back(kEosId);
  return ids;
}

// With --post-fresh 1, a post-training (limit > 0) takes the `limit` pairs that follow pre-training's
// --max-train in the seeded order: pairs the base never saw (cached as "<language>#fresh").
Encoded Study::encoded(const std::vector<Direction>& directions, int64_t limit, int64_t copies) {
  const bool fresh = limit > 0 && options_.integer("post-fresh") == 1;
  const int64_t max_train = options_.integer("max-train");
  if (fresh && max_train <= 0) throw OptionError("--post-fresh 1 needs --max-train > 0 (pairs left for post-training)");
  std::vector<std::vector<int>> src, tgt;
  for (const auto& d : directions) {
    const bool into_english = d.target == "en";
    const int tag = tokenizer().tag(d.target);
    std::vector<std::string> from, to;
    const std::string language = into_english ? d.source : d.target;
    if (fresh && pairs_.find(language + "#fresh") == pairs_.end()) {
      const auto all = read_pairs(config_.corpus_dir, language, "train");
      if (static_cast<int64_t>(all.size()) <= max_train)
        throw OptionError("--post-fresh 1: " + config_.corpus_dir + "/" + language + ".train.tsv has " +
                          std::to_string(all.size()) + " pairs, none beyond --max-train " + std::to_string(max_train));
      const auto order = hash_order(all, options_.seed());  // pre-training's subset is its first max_train
      std::vector<Pair> pool;
      for (size_t i = static_cast<size_t>(max_train); i < order.size() && static_cast<int64_t>(pool.size()) < limit; ++i)
        pool.push_back(all[order[i]]);
      pairs_.emplace(language + "#fresh", std::move(pool));
    }
    const auto& pairs = fresh ? pairs_.at(language + "#fresh") : train_pairs(language);
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
  if (copies > 0) {
    const auto english = copy_messages(copies);
    const int tag = tokenizer().tag("en");
    for (auto& ids : encode(english)) {
      src.push_back(ids);
      ids.insert(ids.begin(), tag);
      tgt.push_back(std::move(ids));
    }
  }
  const int64_t max_len = options_.integer("max-len");
  return {pad_batch(src, max_len), pad_batch(tgt, max_len + 1)};
}

// Copied-target augmentation (Currey et al. 2017): the distinct English messages of pre-training's
// pairs (languages in corpus order), ordered by a seeded hash, the first `n` of them.
std::vector<std::string> Study::copy_messages(int64_t n) {
  std::vector<Pair> english;
  std::set<std::string> seen;
  for (const auto& language : languages(groups_))
    for (const auto& p : train_pairs(language))
      if (seen.insert(p.source).second) english.push_back(p);
  std::vector<std::string> out;
  for (const size_t i : hash_order(english, options_.seed() ^ 0x636f7079ull)) {  // "copy"
    if (static_cast<int64_t>(out.size()) >= n) break;
    out.push_back(english[i].source);
  }
  return out;
}

const Study::DevSet& Study::dev_set(const Direction& d, int64_t limit) {
  const std::string key = d.name() + "/" + std::to_string(limit);
  auto it = dev_.find(key);
  if (it != dev_.end()) return it->second;
  const bool into_english = d.target == "en";
  DevSet set;
  for (const auto& p : subset(read_pairs(config_.corpus_dir, into_english ? d.source : d.target, "dev"), limit,
                              options_.seed())) {
    set.source_text.push_back(into_english ? p.target : p.source);
    set.references.push_back(into_english ? p.source : p.target);
  }
  set.sources = encode(set.source_text);
  return dev_.emplace(key, std::move(set)).first->second;
}

Translator Study::new_model(torch::Generator* generator) {
  Translator model{nullptr};
  *generator = seeded_build(options_.seed(), [&] {
    model = Translator(model_options(options_, tokenizer().vocab_size()));
  });
  return model;
}

Metadata Study::metadata() const {
  return {{kMethodKey, "mt"}, {kOptionsKey, options_.canonical()}, {kSeedKey, std::to_string(options_.seed())}};
}

bool Study::train_model(const std::string& name, const std::vector<Direction>& directions, bool from_base,
                        const ProgressCallback& progress) {
  const std::string out = path(model_file(name));
  if (config_.resume && exists(out)) return true;
  torch::Generator generator;
  Translator model = new_model(&generator);
  if (from_base) Checkpoint::open(path(model_file("pretrain")), "mt-model").load_module("", *model);
  model->to(device_);
  const double lr = options_.real(from_base ? "post-lr" : "lr");
  // Adam: AdamW without weight decay (the arithmetic of torch::optim::Adam with none).
  ForeachAdamW optimizer(model->parameters(), torch::optim::AdamWOptions(lr).betas({0.9, 0.98}).weight_decay(0));
  const Encoded data = encoded(directions, from_base ? options_.integer("post-max-train") : 0,
                               from_base ? 0 : options_.integer("copy-pairs"));
  // Every batch gathered once, on the device, cut to its own longest source and target, so a step
  // reads nothing back from the device but the gradient norm.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;  // ([B][S], [B][T + 1])
  for (const auto& ids : length_batches(data, options_.integer("batch"), options_.seed(), torch::kCPU)) {
    const auto src = data.src.index_select(0, ids), tgt = data.tgt.index_select(0, ids);
    const int64_t s = src.ne(kPadId).sum(1).max().item<int64_t>(), t = tgt.ne(kPadId).sum(1).max().item<int64_t>();
    batches.emplace_back(src.slice(1, 0, s).contiguous().to(device_), tgt.slice(1, 0, t).contiguous().to(device_));
  }
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
  // The epoch's losses summed on the device and read once, at its last step (the loop averages
  // what the steps return, so the others return 0).
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
  int64_t steps_in_epoch = 0;
  std::vector<torch::Tensor> parameters = model->parameters();
  stage.step = [&](const torch::Tensor& which) {
    const auto& [src, tgt] = batches[which.item<int64_t>()];  // `which` is on the CPU (ctx.device)
    // The step count is Adam's (restored with its moments on --resume), so the schedule of a
    // resumed run equals an uninterrupted one's.
    const auto it = optimizer.state().find(state_key<decltype(optimizer.state())>(parameters.front()));
    const int64_t done =
        it == optimizer.state().end() ? 0 : static_cast<torch::optim::AdamWParamState&>(*it->second).step();
    for (auto& p : parameters) p.mutable_grad() = torch::Tensor();  // none, not zeros: no kernel per tensor
    const auto loss = translation_loss(model, src, tgt, smoothing);
    loss.backward();
    optimizer.param_groups().front().options().set_lr(lr * schedule(done, warmup, total_steps));
    clipped_step(optimizer, /*max_norm=*/1.0);
    loss_sum += loss.detach().to(torch::kFloat64);
    if (++steps_in_epoch < steps_per_epoch) return std::vector<double>{0.0};
    const double sum = loss_sum.item<double>();
    loss_sum.zero_();
    steps_in_epoch = 0;
    return std::vector<double>{sum};
  };
  // Mean greedy chrF of the model over `limit` dev messages of each of its directions; with
  // `detail`, also each direction's chrF ("dev_chrF.<dir>" when there are several) and the length
  // ratio "dev_len" = characters of the hypotheses / of the references (all directions).
  auto dev_chrf = [&](int64_t limit, Metrics* detail = nullptr) {
    double sum = 0, hyp_chars = 0, ref_chars = 0;
    for (const auto& d : directions) {
      const auto& dev = dev_set(d, limit);
      const auto ids = translate(model, dev.sources, tokenizer().tag(d.target), /*beam=*/1,
                                 options_.integer("decode-batch"), device_, options_.real("eos-penalty"),
                                 options_.real("copy-bonus"));
      const auto hyp = tokenizer().decode(ids);
      const double score = chrf(hyp, dev.references);
      sum += score;
      for (const auto& h : hyp) hyp_chars += static_cast<double>(h.size());
      for (const auto& r : dev.references) ref_chars += static_cast<double>(r.size());
      if (detail && directions.size() > 1) (*detail)["dev_chrF." + d.name()] = score;
    }
    if (detail) (*detail)["dev_len"] = ref_chars > 0 ? hyp_chars / ref_chars : 0.0;
    return sum / static_cast<double>(directions.size());
  };
  // Post-training's epoch chosen on dev (--post-select N): the base (epoch 0) and every epoch are
  // scored on N dev messages per direction; the best (the earliest of equals) is kept in
  // state/<name>.best.safetensors, so a resumed run chooses as an uninterrupted one, and becomes
  // the model. So no post-trained model scores below its base on those messages.
  const int64_t select = from_base ? options_.integer("post-select") : 0;
  const std::string best_file = path("state/" + name + ".best.safetensors");
  double best = 0;
  int64_t best_epoch = 0;
  auto keep_best = [&](double score, int64_t epoch) {
    best = score, best_epoch = epoch;
    CheckpointWriter writer;
    writer.add_module("", *model);
    for (const auto& [k, v] : metadata()) writer.set(k, v);
    writer.set(kKindKey, "mt-model");
    writer.set("septa.nn.mt.dev_chrF", std::to_string(score));
    writer.set("septa.nn.mt.epoch", std::to_string(epoch));
    writer.write(best_file);
  };
  if (select > 0) {
    if (config_.resume && exists(best_file)) {
      const Checkpoint saved = Checkpoint::open(best_file, "mt-model");
      best = std::stod(saved.get("septa.nn.mt.dev_chrF"));
      best_epoch = std::stoll(saved.get("septa.nn.mt.epoch"));
    } else {
      keep_best(dev_chrf(select), 0);
      char line[160];
      std::snprintf(line, sizeof line, "[%s] base: dev_select_chrF %.2f on %lld dev messages per direction", name.c_str(),
                    best, static_cast<long long>(select));
      log_to(progress, line);
    }
  }
  const int64_t dev_sample = options_.integer("dev-sample");
  if (dev_sample > 0 || select > 0)
    stage.evaluate = [&, dev_sample] {
      Metrics metrics;
      if (dev_sample > 0) {
        double copy_sum = 0;
        for (const auto& d : directions) {
          const auto& dev = dev_set(d, dev_sample);
          const double copy = chrf(dev.source_text, dev.references);
          copy_sum += copy;
          if (directions.size() > 1) metrics["dev_copy_chrF." + d.name()] = copy;
        }
        metrics["dev_chrF"] = dev_chrf(dev_sample, &metrics);
        metrics["dev_copy_chrF"] = copy_sum / static_cast<double>(directions.size());
      }
      if (select > 0) {
        const double score = select == dev_sample ? metrics["dev_chrF"] : dev_chrf(select);
        const auto it = optimizer.state().find(state_key<decltype(optimizer.state())>(parameters.front()));
        const int64_t epoch = static_cast<torch::optim::AdamWParamState&>(*it->second).step() / steps_per_epoch;
        if (score > best) keep_best(score, epoch);
        metrics["dev_select_chrF"] = score;
        metrics["best_epoch"] = static_cast<double>(best_epoch);
      }
      return metrics;
    };
  stage.modules = {model.get()};
  stage.optimizers = {&optimizer};
  RunContext ctx;
  ctx.device = torch::kCPU;  // of each epoch's batch order only: the step reads its batch number without a sync
  ctx.progress = progress;
  ctx.state_dir = path("state");
  ctx.resume = config_.resume;
  ctx.metadata = metadata();
  const StageOutcome outcome = run_stage(stage, ctx);
  if (!outcome.complete) return false;
  if (select > 0) Checkpoint::open(best_file, "mt-model").load_module("", *model);
  CheckpointWriter writer;
  writer.add_module("", *model);
  for (const auto& [k, v] : metadata()) writer.set(k, v);
  writer.set(kKindKey, "mt-model");
  std::string names;
  for (const auto& d : directions) names += (names.empty() ? "" : ",") + d.name();
  writer.set("septa.nn.mt.directions", names);
  writer.set("septa.nn.mt.examples", std::to_string(data.size()));
  if (select > 0) {
    writer.set("septa.nn.mt.epoch", std::to_string(best_epoch));
    writer.set("septa.nn.mt.dev_chrF", std::to_string(best));
  }
  writer.write(out);
  if (select > 0) std::remove(best_file.c_str());
  return !outcome.stopped;
}

Translator Study::load(const std::string& relative) {
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

std::vector<std::pair<std::string, std::vector<Direction>>> post_trained_models(const Groups& groups) {
  const auto all = all_directions(groups);
  std::vector<std::pair<std::string, std::vector<Direction>>> out = {{"multi", all}};
  for (const auto& d : all) out.push_back({"sep." + d.name(), {d}});
  for (size_t g = 0; g < groups.size(); ++g) {
    out.push_back({"group" + std::to_string(g), all_directions({groups[g]})});
    out.push_back({"dat.en-g" + std::to_string(g), from_english(groups, g)});
  }
  return out;
}

std::vector<int> part_of_models(const std::vector<std::pair<std::string, std::vector<Direction>>>& models, int parts) {
  // Longest processing time first (Graham 1969): the models by falling direction count (their
  // post-training data and dev scoring grow with it; ties in train order), each to the part with
  // the smallest load so far (ties: the lowest part).
  std::vector<size_t> order(models.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return models[a].second.size() > models[b].second.size(); });
  std::vector<size_t> load(static_cast<size_t>(parts), 0);
  std::vector<int> out(models.size(), 1);
  for (size_t i : order) {
    const auto least = std::min_element(load.begin(), load.end()) - load.begin();
    out[i] = static_cast<int>(least) + 1;
    load[least] += models[i].second.size();
  }
  return out;
}

bool train(const StudyConfig& config, const ProgressCallback& progress) {
  if (config.parts < 0 || (config.parts > 0 && (config.part < 0 || config.part > config.parts)))
    throw OptionError("--part must be I/N with 0 <= I <= N, got " + std::to_string(config.part) + "/" +
                      std::to_string(config.parts));
  Study study(config);
  study.check_options_file();
  const Groups& groups = study.groups();
  if (config.parts == 0 || config.part == 0) {
    study.train_tokenizer_if_needed([&](const std::string& line) { log_to(progress, line); });
    if (!study.train_model("pretrain", all_directions(groups), false, progress)) return false;
    if (config.parts > 0) return true;
  } else {
    for (const std::string& file : {std::string("spm.model"), model_file("pretrain")})
      if (!exists(study.path(file)))
        throw ModelError(study.path(file) + ": missing; --part " + std::to_string(config.part) + "/" +
                         std::to_string(config.parts) + " post-trains from the base: run --part 0/" +
                         std::to_string(config.parts) + " first");
  }
  const auto models = post_trained_models(groups);
  const auto part = part_of_models(models, std::max(config.parts, 1));
  for (size_t i = 0; i < models.size(); ++i)
    if (config.parts == 0 || part[i] == config.part)
      if (!study.train_model(models[i].first, models[i].second, true, progress)) return false;
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

}  // namespace septa::nn::mt
