// The translation study end to end on a tiny synthetic system (two languages, one group).
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
