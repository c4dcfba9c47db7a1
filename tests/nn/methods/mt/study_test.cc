// The translation study end to end on a tiny synthetic system (two languages, one group), and
// the transformer's training and decoding.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "nn/data/mo.h"
#include "nn/foreach_clip.h"
#include "nn/methods/mt/metrics.h"
#include "nn/methods/mt/study.h"
#include "nn/methods/mt/tokenizer.h"
#include "nn/methods/mt/transformer.h"
#include "safetensors/safetensors.h"
#include "septa/nn/mt.h"

namespace septa::nn::mt {
namespace {

void mkdirs(const std::string& path) {
  for (size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
    ::mkdir(path.substr(0, at).c_str(), 0755);
    if (at == std::string::npos) break;
  }
}

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

// Synthetic languages: every English word has a fixed foreign word per language (a letter
// substitution), sentences are 2-4 words; 30 packages of 20 messages.
const char* const kWords[] = {"open", "file", "save", "close", "window", "print", "new", "folder",
                              "delete", "copy", "paste", "search", "help", "quit", "edit", "view"};

std::string substitute(const std::string& word, int shift) {
  std::string out;
  for (char c : word) out += static_cast<char>('a' + (c - 'a' + shift) % 26);
  return out;
}

// Every tensor of models/<model>.safetensors bit-equal in two study directories.
void expect_same_weights(const std::string& dir_a, const std::string& dir_b, const std::string& model) {
  const auto a = safetensors::Reader::open(dir_a + "/models/" + model + ".safetensors");
  const auto b = safetensors::Reader::open(dir_b + "/models/" + model + ".safetensors");
  ASSERT_EQ(a.tensors().size(), b.tensors().size()) << model;
  for (const auto& t : a.tensors()) EXPECT_EQ(a.read_f32(t.name), b.read_f32(t.name)) << model << " " << t.name;
}

// The tiny translator of the study tests (vocab 120, dim 16, 2 heads, ff 16, one layer) with a
// test's own options added.
OptionValues tiny_study(std::initializer_list<OptionValues::value_type> own) {
  OptionValues options = {{"vocab", "120"}, {"dim", "16"}, {"heads", "2"}, {"ff", "16"}, {"layers", "1"}};
  for (const auto& [name, value] : own) options[name] = value;
  return options;
}

struct StudyFixture {
  std::string root;
  StudyFixture() {
    char templ[] = "/tmp/septa_mt_study_XXXXXX";
    root = ::mkdtemp(templ);
    std::mt19937 rng(5);
    std::string status;
    for (int p = 0; p < 30; ++p) {
      const std::string package = "pkg" + std::to_string(p);
      status += "Package: " + package + "\nStatus: install ok installed\n\n";
      std::vector<std::string> english;
      for (int m = 0; m < 20; ++m) {
        const int n = 2 + static_cast<int>(rng() % 3);
        std::string sentence;
        for (int w = 0; w < n; ++w) sentence += (w ? " " : "") + std::string(kWords[rng() % 16]);
        english.push_back(sentence);
      }
      std::string list;
      for (const auto& [lang, shift] : {std::pair<std::string, int>{"de", 7}, {"fr", 13}}) {
        std::vector<MoEntry> entries;
        for (const auto& e : english) {
          std::string translation, word;
          std::istringstream words(e);
          while (words >> word) translation += (translation.empty() ? "" : " ") + substitute(word, shift);
          entries.push_back({"", e, "", {translation}});
        }
        const std::string dir = root + "/locale/" + lang + "/LC_MESSAGES";
        mkdirs(dir);
        std::ofstream(dir + "/" + package + ".mo", std::ios::binary) << write_mo(entries, p % 2 == 0);
        list += dir + "/" + package + ".mo\n";
      }
      mkdirs(root + "/dpkg/info");
      std::ofstream(root + "/dpkg/info/" + package + ".list") << list;
    }
    std::ofstream(root + "/dpkg/status") << status;
  }
  std::string corpus_dir() const { return root + "/corpus"; }
  // The corpus of GROUPS from the fixture's catalogues, in corpus_dir(); build_corpus's statistics.
  std::string build_corpus(const std::string& groups) const {
    CorpusRequest corpus;
    corpus.out_dir = corpus_dir();
    corpus.groups = groups;
    corpus.locale_dir = root + "/locale";
    corpus.dpkg_dir = root + "/dpkg";
    corpus.test_fraction = 0.2;
    return mt::build_corpus(corpus, [](const std::string&) {});
  }
  ~StudyFixture() {
    if (!std::getenv("SEPTA_KEEP_TEST_FILES")) std::system(("rm -rf " + root).c_str());
  }
};

TEST(StudyTest, TinyEndToEndRunGivesTheDeltaTableAndDatmEqualsSeptaMerge) {
  StudyFixture f;
  const std::string stats = f.build_corpus("de,fr");
  ASSERT_NE(stats.find("de\t0\t30"), std::string::npos) << stats;

  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.dir = f.root + "/study";
  config.device = "cpu";
  config.options = {{"vocab", "150"}, {"dim", "32"}, {"heads", "2"}, {"ff", "64"}, {"layers", "1"},
                    {"max-len", "24"}, {"pretrain-epochs", "6"}, {"post-epochs", "2"}, {"batch", "32"},
                    {"lr", "0.003"}, {"post-lr", "0.001"}, {"max-train", "400"}, {"test-limit", "60"}};
  int epochs_reported = 0;
  ASSERT_TRUE(train(config, [&](const Progress& p) {
    epochs_reported += p.epochs > 0;
    return true;
  }));
  EXPECT_EQ(epochs_reported, 6 + 2 * (1 + 4 + 1 + 1));  // pretrain, multi, 4 separate, group, dat
  merge(config, [](const std::string&) {});
  const std::string results = evaluate(config, [](const std::string&) {});
  const std::string analysis = analyse(config.dir);
  for (const char* needle : {"| de-en |", "| en-fr |", "multi - sep", "datm-ties - dat on X->en",
                             "| datm-ties | 2 |", "| separate | 4 |", "| multilingual | 1 |"})
    EXPECT_NE(analysis.find(needle), std::string::npos) << needle << "\n" << analysis;

  // Every trained setting beats copying the source (the languages share no words with English).
  std::istringstream rows(results);
  std::string line;
  std::getline(rows, line);
  std::map<std::string, double> copy, sum;
  while (std::getline(rows, line)) {
    std::istringstream fields(line);
    std::string setting, direction, model, chrf_text;
    std::getline(fields, setting, '\t');
    std::getline(fields, direction, '\t');
    std::getline(fields, model, '\t');
    std::getline(fields, chrf_text, '\t');
    sum[setting] += std::stod(chrf_text);
  }
  for (const auto& [setting, total] : sum) {
    if (setting == "copy") continue;
    EXPECT_GT(total, sum["copy"] + 4 * 10.0) << setting;
  }

  // DATM's merged weights are exactly what `septa merge` makes of the same experts.
  const char* cli = std::getenv("SEPTA_CLI");
  ASSERT_NE(cli, nullptr) << "SEPTA_CLI must name the septa executable";
  for (const char* method : {"ties", "linear", "task_arithmetic"}) {
    const std::string ours = config.dir + "/merged/" + method + ".g0";
    const std::string theirs = f.root + "/cli_" + method;
    const std::string command = std::string(cli) + " merge " + ours + ".yaml " + theirs + " --quiet";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    const auto a = safetensors::Reader::open(ours + "/model.safetensors");
    const auto b = safetensors::Reader::open(theirs + "/model.safetensors");
    ASSERT_EQ(a.tensors().size(), b.tensors().size());
    ASSERT_GT(a.tensors().size(), 10u);
    for (const auto& t : a.tensors()) {
      const auto& u = b.tensor(t.name);
      ASSERT_EQ(t.nbytes(), u.nbytes()) << t.name;
      EXPECT_EQ(std::memcmp(a.data(t), b.data(u), t.nbytes()), 0) << method << " " << t.name;
    }
  }
  // And the merge really mixes: TIES of two different experts differs from each expert.
  const auto merged = safetensors::Reader::open(config.dir + "/merged/ties.g0/model.safetensors");
  const auto expert = safetensors::Reader::open(config.dir + "/models/sep.de-en.safetensors");
  EXPECT_NE(merged.read_f32("embed.weight"), expert.read_f32("embed.weight"));
}

TEST(StudyTest, ResumeRefusesOtherOptions) {
  StudyFixture f;
  f.build_corpus("de");
  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.dir = f.root + "/study";
  config.device = "cpu";
  config.options = tiny_study({{"pretrain-epochs", "1"}, {"max-train", "50"}});
  // Stop after the first epoch of pre-training, then resume with other options: refused.
  EXPECT_FALSE(train(config, [](const Progress& p) { return p.epochs == 0; }));
  config.resume = true;
  config.options["dim"] = "32";
  EXPECT_THROW(train(config, {}), OptionError);
  config.options["dim"] = "16";
  EXPECT_TRUE(train(config, {}));
  EXPECT_THROW(
      [&] {
        auto bad = config;
        bad.options["heads"] = "3";
        bad.resume = false;
        train(bad, {});
      }(),
      OptionError);
}

TEST(StudyTest, LengthBatchesPartitionThePairsIntoBatchesOfRisingLength) {
  std::mt19937 rng(5);
  std::vector<std::vector<int>> src, tgt;
  for (int n = 0; n < 203; ++n) {
    src.emplace_back(1 + rng() % 30, 7);
    tgt.emplace_back(1 + rng() % 30, 9);
  }
  const Encoded data{pad_batch(src, 48), pad_batch(tgt, 48)};
  auto length = [&](int64_t n) { return std::max(src[n].size(), tgt[n].size()); };
  const auto batches = length_batches(data, 16, 7, torch::kCPU);
  ASSERT_EQ(batches.size(), 13u);  // 12 x 16 + 11
  std::vector<int> seen(203, 0);
  size_t previous_longest = 0;
  for (size_t b = 0; b < batches.size(); ++b) {
    EXPECT_EQ(batches[b].size(0), b + 1 < batches.size() ? 16 : 11);
    size_t shortest = 1000, longest = 0;
    for (int64_t i = 0; i < batches[b].size(0); ++i) {
      const int64_t n = batches[b][i].item<int64_t>();
      ASSERT_TRUE(n >= 0 && n < 203);
      ++seen[n];
      shortest = std::min(shortest, length(n)), longest = std::max(longest, length(n));
    }
    EXPECT_LE(previous_longest, shortest) << "batch " << b;  // sorted by length across batches
    previous_longest = longest;
  }
  for (int n = 0; n < 203; ++n) EXPECT_EQ(seen[n], 1) << n;
  // Deterministic for a seed; another seed breaks the ties between equal lengths differently.
  const auto again = length_batches(data, 16, 7, torch::kCPU), other = length_batches(data, 16, 8, torch::kCPU);
  bool differs = false;
  for (size_t b = 0; b < batches.size(); ++b) {
    EXPECT_TRUE(torch::equal(batches[b], again[b]));
    differs = differs || !torch::equal(batches[b], other[b]);
  }
  EXPECT_TRUE(differs);
}

TEST(StudyTest, PostMaxTrainLimitsThePairsOfEveryPostTraining) {
  StudyFixture f;
  f.build_corpus("de");
  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.dir = f.root + "/study";
  config.device = "cpu";
  config.options = tiny_study({{"pretrain-epochs", "1"}, {"max-train", "50"},
                               {"post-max-train", "20"}});
  ASSERT_TRUE(train(config, {}));
  auto examples = [&](const std::string& model) {
    const auto reader = safetensors::Reader::open(config.dir + "/models/" + model + ".safetensors");
    return std::stoi(reader.metadata().at("septa.nn.mt.examples"));
  };
  ASSERT_GT(examples("pretrain"), 2 * 20);  // both directions of de, up to 50 pairs each
  EXPECT_EQ(examples("multi"), 2 * 20);
  EXPECT_EQ(examples("sep.de-en"), 20);
  EXPECT_EQ(examples("sep.en-de"), 20);
  EXPECT_EQ(examples("group0"), 2 * 20);
  EXPECT_EQ(examples("dat.en-g0"), 20);

  // --eval-dev 7 scores 7 dev messages per direction into dev_results.tsv (not results.tsv); its
  // copy rows are the chrF of the dev sources against their references.
  merge(config, [](const std::string&) {});
  config.options["eval-dev"] = "7";
  const std::string table = evaluate(config, [](const std::string&) {});
  struct stat st;
  EXPECT_NE(::stat((config.dir + "/results.tsv").c_str(), &st), 0);
  std::ifstream saved(config.dir + "/dev_results.tsv");
  std::stringstream text;
  text << saved.rdbuf();
  EXPECT_EQ(text.str(), table);
  Study study(config);
  int copy_rows = 0;
  std::istringstream rows(table);
  for (std::string line; std::getline(rows, line);) {
    if (line.rfind("copy\t", 0) != 0) continue;
    const bool into_english = line.find("de-en") != std::string::npos;
    const auto& dev = study.dev_set(into_english ? Direction{"de", "en"} : Direction{"en", "de"}, 7);
    ASSERT_EQ(dev.references.size(), 7u);
    char expected[64];
    std::snprintf(expected, sizeof expected, "\t%.2f\t", chrf(dev.source_text, dev.references));
    EXPECT_NE(line.find(expected), std::string::npos) << line << " vs " << expected;
    ++copy_rows;
  }
  EXPECT_EQ(copy_rows, 2);
}

TEST(StudyTest, PostFreshTakesPairsThePreTrainingNeverSaw) {
  StudyFixture f;
  f.build_corpus("de");
  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.dir = f.root + "/study";
  config.device = "cpu";
  config.options = tiny_study({{"pretrain-epochs", "1"}, {"max-train", "50"},
                               {"post-max-train", "20"}, {"post-fresh", "1"}});
  ASSERT_TRUE(train(config, {}));
  const auto reader = safetensors::Reader::open(config.dir + "/models/sep.de-en.safetensors");
  EXPECT_EQ(reader.metadata().at("septa.nn.mt.examples"), "20");
  Study study(config);
  const Direction de_en{"de", "en"};
  const auto seen = study.encoded({de_en}, 0), fresh = study.encoded({de_en}, 20);
  ASSERT_EQ(seen.size(), 50);
  ASSERT_EQ(fresh.size(), 20);
  std::set<std::vector<int64_t>> english;  // target rows (tag, English tokens, eos), padding dropped
  auto row = [](const torch::Tensor& t, int64_t i) {
    std::vector<int64_t> out;
    for (int64_t j = 0; j < t.size(1) && t[i][j].item<int64_t>() != kPadId; ++j) out.push_back(t[i][j].item<int64_t>());
    return out;
  };
  for (int64_t i = 0; i < seen.size(); ++i) english.insert(row(seen.tgt, i));
  for (int64_t i = 0; i < fresh.size(); ++i) EXPECT_EQ(english.count(row(fresh.tgt, i)), 0u) << i;
  // Nothing left beyond --max-train: refused, naming the option.
  config.dir = f.root + "/study2";
  config.options["max-train"] = "100000";
  EXPECT_THROW(train(config, {}), OptionError);
}

TEST(StudyTest, CopyPairsAddEnglishCopiesToPreTrainingOnly) {
  StudyFixture f;
  f.build_corpus("de,fr");
  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.dir = f.root + "/study";
  config.device = "cpu";
  config.options = tiny_study({{"pretrain-epochs", "1"}, {"post-epochs", "1"}, {"max-train", "50"},
                               {"post-max-train", "20"}, {"copy-pairs", "30"}});
  Study study(config);
  study.check_options_file();
  study.train_tokenizer_if_needed([](const std::string&) {});
  const auto all = all_directions(study.groups());
  const Encoded plain = study.encoded(all, 0), augmented = study.encoded(all, 0, 30);
  ASSERT_EQ(augmented.size(), plain.size() + 30);
  std::set<std::string> english;
  for (const char* language : {"de", "fr"})
    for (const auto& p : study.train_pairs(language)) english.insert(p.source);
  const auto copies = study.copy_messages(30);
  ASSERT_EQ(copies.size(), 30u);
  EXPECT_EQ(std::set<std::string>(copies.begin(), copies.end()).size(), 30u);  // distinct
  for (const auto& c : copies) EXPECT_EQ(english.count(c), 1u) << c;  // pre-training's English
  EXPECT_EQ(study.copy_messages(1000000).size(), english.size());
  // The added rows are copies: target = the English tag, then the source's tokens (eos included).
  const int en = study.tokenizer().tag("en");
  const auto encoded_copies = study.encode(copies);
  for (int64_t i = 0; i < 30; ++i) {
    const int64_t n = plain.size() + i;
    std::vector<int64_t> src, tgt;
    for (int64_t j = 0; j < augmented.src.size(1) && augmented.src[n][j].item<int64_t>() != kPadId; ++j)
      src.push_back(augmented.src[n][j].item<int64_t>());
    for (int64_t j = 0; j < augmented.tgt.size(1) && augmented.tgt[n][j].item<int64_t>() != kPadId; ++j)
      tgt.push_back(augmented.tgt[n][j].item<int64_t>());
    ASSERT_FALSE(tgt.empty());
    EXPECT_EQ(tgt.front(), en);
    EXPECT_EQ(std::vector<int64_t>(tgt.begin() + 1, tgt.end()), src) << i;
    EXPECT_EQ(src, std::vector<int64_t>(encoded_copies[i].begin(), encoded_copies[i].end())) << i;
  }
  // Pre-training gets them, post-training does not.
  ASSERT_TRUE(train(config, {}));
  auto examples = [&](const std::string& model) {
    const auto reader = safetensors::Reader::open(config.dir + "/models/" + model + ".safetensors");
    return std::stoi(reader.metadata().at("septa.nn.mt.examples"));
  };
  EXPECT_EQ(examples("pretrain"), plain.size() + 30);
  EXPECT_EQ(examples("sep.de-en"), 20);
  EXPECT_EQ(examples("multi"), 4 * 20);
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(StudyTest, PostSelectKeepsTheDevBestEpochAndTheBaseWhenPostTrainingOnlyHurts) {
  StudyFixture f;
  f.build_corpus("de");
  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.dir = f.root + "/study";
  config.device = "cpu";
  config.options = {{"vocab", "150"}, {"dim", "32"},         {"heads", "2"},          {"ff", "64"},
                    {"layers", "1"},  {"max-len", "24"},     {"pretrain-epochs", "6"}, {"post-epochs", "2"},
                    {"batch", "32"},  {"lr", "0.003"},       {"max-train", "400"},    {"post-max-train", "100"},
                    {"post-select", "20"}, {"post-lr", "0.5"}};  // a rate that wrecks the model
  ASSERT_TRUE(train(config, {}));
  Study study(config);
  const auto base = study.load("models/pretrain.safetensors");
  for (const char* name : {"multi", "sep.de-en", "sep.en-de", "group0", "dat.en-g0"}) {
    const std::string file = "models/" + std::string(name) + ".safetensors";
    const auto reader = safetensors::Reader::open(config.dir + "/" + file);
    EXPECT_EQ(reader.metadata().at("septa.nn.mt.epoch"), "0") << name;
    auto model = study.load(file);
    const auto a = model->parameters(), b = base->parameters();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_TRUE(torch::equal(a[i], b[i])) << name << " tensor " << i;
    struct stat st;
    EXPECT_NE(::stat((config.dir + "/state/" + name + ".best.safetensors").c_str(), &st), 0) << name;
  }
  // At a sane rate the kept model is the one whose dev chrF the file records (whichever epoch won).
  config.dir = f.root + "/study2";
  config.options["post-lr"] = "0.001";
  ASSERT_TRUE(train(config, {}));
  Study study2(config);
  for (const auto& d : std::vector<Direction>{{"de", "en"}, {"en", "de"}}) {
    const std::string file = "models/sep." + d.name() + ".safetensors";
    const auto reader = safetensors::Reader::open(config.dir + "/" + file);
    auto model = study2.load(file);
    const auto& dev = study2.dev_set(d, 20);
    const auto ids = translate(model, dev.sources, study2.tokenizer().tag(d.target), 1, 100, torch::kCPU);
    EXPECT_NEAR(chrf(study2.tokenizer().decode(ids), dev.references),
                std::stod(reader.metadata().at("septa.nn.mt.dev_chrF")), 1e-4)
        << d.name() << " epoch " << reader.metadata().at("septa.nn.mt.epoch");
  }
}

TEST(StudyTest, TokenizerTrainedAheadIsTheOneTrainWouldTrainAndIsUsedAsGiven) {
  StudyFixture f;
  f.build_corpus("de");
  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.device = "cpu";
  config.options = tiny_study({{"pretrain-epochs", "1"}, {"max-train", "50"}});
  const std::string ahead = f.root + "/ahead.model";
  train_tokenizer(config.corpus_dir, config.options, ahead, [](const std::string&) {});
  EXPECT_THROW(train_tokenizer(config.corpus_dir, config.options, f.root + "/x.bin", [](const std::string&) {}),
               OptionError);
  config.dir = f.root + "/own";
  ASSERT_TRUE(train(config, {}));
  // The same pieces and scores (the files differ only in the trainer's recorded input paths).
  const std::vector<std::string> languages = {"en", "de"};
  const Tokenizer own(config.dir + "/spm.model", languages), given(ahead, languages);
  EXPECT_EQ(own.vocab_size(), given.vocab_size());
  const std::vector<std::string> texts = {"open file", "save window folder", "vwlu mpsl", "quit help edit view"};
  EXPECT_EQ(own.encode(texts), given.encode(texts));
  EXPECT_EQ(own.tag("de"), given.tag("de"));

  config.dir = f.root + "/given";
  config.tokenizer = ahead;
  ASSERT_TRUE(train(config, {}));
  EXPECT_TRUE(file_bytes(config.dir + "/spm.model") == file_bytes(ahead));
  const auto a = safetensors::Reader::open(f.root + "/own/models/sep.de-en.safetensors");
  const auto b = safetensors::Reader::open(f.root + "/given/models/sep.de-en.safetensors");
  for (const auto& t : a.tensors()) EXPECT_EQ(a.read_f32(t.name), b.read_f32(t.name)) << t.name;

  config.dir = f.root + "/missing";
  config.tokenizer = f.root + "/none.model";
  EXPECT_THROW(train(config, {}), IoError);
  // A model without a tag of the corpus's languages (fr) is refused before any training.
  f.build_corpus("de,fr");
  config.dir = f.root + "/no_fr";
  config.tokenizer = ahead;
  EXPECT_THROW(train(config, {}), ModelError);
}

TEST(StudyTest, ResumedRunEqualsAnUninterruptedOneLearningRateScheduleIncluded) {
  StudyFixture f;
  f.build_corpus("de");
  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.device = "cpu";
  config.options = tiny_study({{"batch", "16"}, {"pretrain-epochs", "3"}, {"max-train", "60"},
                               {"warmup", "5"}, {"lr", "0.01"}});
  config.dir = f.root + "/whole";
  ASSERT_TRUE(train(config, {}));
  // Stopped after the first pre-training epoch (mid warm-up-and-decay), then resumed.
  config.dir = f.root + "/resumed";
  int epochs = 0;
  EXPECT_FALSE(train(config, [&](const Progress& p) { return p.epochs == 0 || ++epochs < 1; }));
  config.resume = true;
  ASSERT_TRUE(train(config, {}));
  for (const char* model : {"pretrain", "multi", "sep.de-en"}) {
    expect_same_weights(f.root + "/whole", f.root + "/resumed", model);
  }
}

TEST(StudyTest, ResumedPostSelectChoosesAsAnUninterruptedRun) {
  // Stopped after the second of three post-training epochs of "multi" (its best so far kept in
  // state/multi.best.safetensors), then resumed: the same chosen epoch and weights.
  StudyFixture f;
  f.build_corpus("de");
  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.device = "cpu";
  config.options = tiny_study({{"batch", "16"}, {"pretrain-epochs", "2"}, {"max-train", "60"},
                               {"warmup", "5"}, {"lr", "0.01"}, {"post-epochs", "3"},
                               {"post-lr", "0.003"}, {"post-select", "10"}});
  config.dir = f.root + "/whole";
  ASSERT_TRUE(train(config, {}));
  config.dir = f.root + "/resumed";
  EXPECT_FALSE(train(config, [&](const Progress& p) { return !(p.stage == "multi" && p.epoch == 2); }));
  struct stat st;
  EXPECT_EQ(::stat((config.dir + "/state/multi.best.safetensors").c_str(), &st), 0);
  config.resume = true;
  int multi_base_scored = 0;  // the resumed run reads the kept score back instead of scoring the base again
  ASSERT_TRUE(train(config, [&](const Progress& p) {
    multi_base_scored += p.stage.rfind("[multi] base:", 0) == 0;
    return true;
  }));
  EXPECT_EQ(multi_base_scored, 0);
  for (const char* model : {"multi", "sep.de-en", "group0"}) {
    const auto a = safetensors::Reader::open(f.root + "/whole/models/" + model + ".safetensors");
    const auto b = safetensors::Reader::open(f.root + "/resumed/models/" + model + ".safetensors");
    EXPECT_EQ(a.metadata().at("septa.nn.mt.epoch"), b.metadata().at("septa.nn.mt.epoch")) << model;
    EXPECT_EQ(a.metadata().at("septa.nn.mt.dev_chrF"), b.metadata().at("septa.nn.mt.dev_chrF")) << model;
    expect_same_weights(f.root + "/whole", f.root + "/resumed", model);
  }
}

TEST(StudyTest, PartsSideBySideTrainTheSameModelsAsOneRun) {
  // train --part 0/2 (tokenizer and base), then parts 1/2 and 2/2 in two threads at once: the
  // same models, byte for byte, as one uninterrupted run; every model in exactly one part.
  StudyFixture f;
  f.build_corpus("de,fr");
  StudyConfig config;
  config.corpus_dir = f.corpus_dir();
  config.device = "cpu";
  config.options = tiny_study({{"batch", "16"}, {"pretrain-epochs", "2"}, {"max-train", "60"},
                               {"warmup", "5"}, {"lr", "0.01"}, {"post-epochs", "2"},
                               {"post-select", "10"}});
  config.dir = f.root + "/whole";
  ASSERT_TRUE(train(config, {}));
  config.dir = f.root + "/parts";
  config.parts = 2;
  config.part = 1;
  EXPECT_THROW(train(config, {}), ModelError);  // no base yet
  config.part = 0;
  ASSERT_TRUE(train(config, {}));
  struct stat st;
  EXPECT_NE(::stat((config.dir + "/models/multi.safetensors").c_str(), &st), 0);  // part 0: the base only
  std::vector<std::thread> workers;
  std::vector<int> ok(2, 0);
  for (int part : {1, 2})
    workers.emplace_back([&, part] {
      StudyConfig c = config;
      c.part = part;
      ok[part - 1] = train(c, {});
    });
  for (auto& w : workers) w.join();
  EXPECT_EQ(ok, std::vector<int>({1, 1}));
  const auto models = post_trained_models(read_groups(f.corpus_dir()));
  ASSERT_EQ(models.size(), 1u + 4 + 2);
  const auto part = part_of_models(models, 2);
  EXPECT_NE(std::count(part.begin(), part.end(), 1), 0);
  EXPECT_NE(std::count(part.begin(), part.end(), 2), 0);
  EXPECT_EQ(models.front().first, "multi");
  EXPECT_EQ(part.front(), 1);  // 4 directions: the largest goes first, to part 1
  for (const auto& [model, directions] : models) expect_same_weights(f.root + "/whole", f.root + "/parts", model);
  config.part = 3;
  EXPECT_THROW(train(config, {}), OptionError);
}

}  // namespace
}  // namespace septa::nn::mt
