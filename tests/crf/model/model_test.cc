#include "septa/crf/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "crf/fixtures.h"
#include "crf/forged_model.h"
#include "crf/model/model_file.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

using testing::TempDir;

class ModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::istringstream in(testing::toy_chunking_corpus(60, 3));
    data_ = read_columns(in, "toy.txt");
    TrainOptions options;
    options.max_iterations = 30;
    model_ = train(data_, "toy.txt", FeatureTemplate::default_chunking(), options).model;
    path_ = dir_.file("toy.model");
    model_.save(path_);
  }
  std::vector<std::vector<std::string>> tag_all(const Model& model) const {
    std::vector<std::vector<std::string>> out;
    for (const ColumnSentence& s : data_) out.push_back(model.tag(s).labels);
    return out;
  }
  TempDir dir_;
  std::vector<ColumnSentence> data_;
  Model model_;
  std::string path_;
};

TEST_F(ModelFile, RoundTripGivesIdenticalTagsAndBytes) {
  const Model loaded = Model::load(path_);
  EXPECT_EQ(tag_all(loaded), tag_all(model_));
  EXPECT_EQ(loaded.to_bytes(), model_.to_bytes());
  // save() streams the file in pieces (checksum computed on the way): the bytes of to_bytes().
  EXPECT_EQ(testing::read_text(path_), model_.to_bytes());
  EXPECT_EQ(loaded.labels(), model_.labels());
  EXPECT_EQ(loaded.algorithm(), "lbfgs");
  // The model learnt the toy grammar.
  std::size_t correct = 0, total = 0;
  for (std::size_t n = 0; n < data_.size(); ++n) {
    const auto guess = loaded.tag(data_[n]).labels;
    for (std::size_t t = 0; t < guess.size(); ++t, ++total)
      correct += guess[t] == data_[n].columns[t].back();
  }
  EXPECT_GT(static_cast<double>(correct) / total, 0.97);
}

TEST_F(ModelFile, TruncatedFileIsRejected) {
  const std::string bytes = testing::read_text(path_);
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{20}, bytes.size() / 2,
                          bytes.size() - 1}) {
    testing::write_text(dir_.file("cut.model"), bytes.substr(0, cut));
    EXPECT_THROW(Model::load(dir_.file("cut.model")), ModelError) << "cut at " << cut;
  }
}

TEST_F(ModelFile, CorruptedByteIsDetectedByTheChecksum) {
  std::string bytes = testing::read_text(path_);
  bytes[bytes.size() / 2] ^= 0x40;
  testing::write_text(dir_.file("bad.model"), bytes);
  try {
    Model::load(dir_.file("bad.model"));
    FAIL() << "corrupt model accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
}

TEST_F(ModelFile, ForeignFileAndFutureVersionAreRejected) {
  testing::write_text(dir_.file("foreign.model"), "CRFSUITE model, not ours\n");
  try {
    Model::load(dir_.file("foreign.model"));
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("not a septa model"), std::string::npos) << e.what();
  }
  std::string bytes = testing::read_text(path_);
  bytes[8] = 99;  // version field follows the 8-byte magic
  testing::write_text(dir_.file("future.model"), bytes);
  try {
    Model::load(dir_.file("future.model"));
    FAIL();
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("version 99"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Model::load(dir_.file("missing.model")), IoError);
}

TEST_F(ModelFile, SaveLeavesNoTemporaryFileAndReplacesAtomically) {
  model_.save(path_);  // overwrite
  const std::string listing = [&] {
    std::string cmd = "ls -a '" + dir_.path() + "'";
    FILE* pipe = popen(cmd.c_str(), "r");
    std::string out;
    char buf[256];
    while (fgets(buf, sizeof buf, pipe)) out += buf;
    pclose(pipe);
    return out;
  }();
  EXPECT_EQ(listing.find(".tmp"), std::string::npos) << listing;
  EXPECT_NO_THROW(Model::load(path_));
  EXPECT_THROW(model_.save(dir_.file("no/such/dir/m.model")), IoError);
}

// Every labelling of a short sentence (L^T of them), lexicographic.
std::vector<std::vector<std::string>> all_labellings(std::size_t T,
                                                     const std::vector<std::string>& labels) {
  std::vector<std::vector<std::string>> out;
  std::vector<std::size_t> y(T, 0);
  while (true) {
    std::vector<std::string>& named = out.emplace_back();
    for (std::size_t i : y) named.push_back(labels[i]);
    std::size_t t = T;
    while (t > 0 && ++y[t - 1] == labels.size()) y[--t] = 0;
    if (t == 0) break;
  }
  return out;
}

TEST_F(ModelFile, ProbabilityAndMarginalsMatchEnumerationOfAllLabellings) {
  // Sentences cut to at most 4 tokens (5^4 = 625 labellings each): log P(y|x) of every
  // labelling must sum to 1 in probability, the tagged path must be the most probable one with
  // its log P, and each marginal must be the sum of the probabilities of the labellings
  // through it.
  const std::vector<std::string>& labels = model_.labels();
  const std::size_t L = labels.size();
  ASSERT_EQ(L, 5u);
  for (std::size_t n = 0; n < 8; ++n) {
    ColumnSentence s = data_[n];
    const std::size_t T = std::min<std::size_t>(s.columns.size(), 1 + n % 4);
    s.columns.resize(T);
    const TagResult r = model_.tag(s, /*marginals=*/true);
    ASSERT_EQ(r.marginals.size(), T);
    double total = 0.0, best = -INFINITY;
    std::vector<std::string> best_labels;
    std::vector<std::vector<double>> marginals(T, std::vector<double>(L, 0.0));  // [T][L]
    for (const auto& y : all_labellings(T, labels)) {
      const double log_p = model_.log_probability(s, y);
      ASSERT_LE(log_p, 1e-12);
      const double p = std::exp(log_p);
      total += p;
      if (log_p > best) {
        best = log_p;
        best_labels = y;
      }
      for (std::size_t t = 0; t < T; ++t)
        marginals[t][std::find(labels.begin(), labels.end(), y[t]) - labels.begin()] += p;
    }
    EXPECT_NEAR(total, 1.0, 1e-9) << "sentence " << n;
    EXPECT_EQ(r.labels, best_labels) << "sentence " << n;
    EXPECT_NEAR(r.log_probability, best, 1e-9) << "sentence " << n;
    for (std::size_t t = 0; t < T; ++t)
      for (std::size_t l = 0; l < L; ++l)
        EXPECT_NEAR(r.marginals[t][l], marginals[t][l], 1e-9) << "sentence " << n << " t=" << t;
  }
}

TEST_F(ModelFile, ErrorsOfTaggingNameTheFileAndLineFromTheLibrary) {
  // The toy model reads 3 columns; the sentence on lines 3-4 of "tag.txt" has 4.
  std::istringstream in("the DT x B-NP\n\nthe DT x B-NP\ndog NN x I-NP\n");
  const auto sentences = read_columns(in, "tag.txt");
  ASSERT_EQ(sentences.size(), 2u);
  try {
    model_.tag(sentences[1]);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("tag.txt:3: the model expects 3 columns", 0), 0u)
        << e.what();
  }
}

TEST(Model, AnEmptyModelIsAModelError) {
  const Model empty;
  EXPECT_TRUE(empty.empty());
  EXPECT_THROW(empty.labels(), ModelError);
  EXPECT_THROW(empty.to_bytes(), ModelError);
}

TEST(Training, OneAndTwoThreadsGiveTheSameModel) {
  std::istringstream in(testing::toy_chunking_corpus(200, 9));
  const auto data = read_columns(in, "toy.txt");
  TrainOptions options;
  options.max_iterations = 20;
  options.threads = 1;
  const std::string one =
      train(data, "toy.txt", FeatureTemplate::default_chunking(), options).model.to_bytes();
  options.threads = 2;
  const std::string two =
      train(data, "toy.txt", FeatureTemplate::default_chunking(), options).model.to_bytes();
  EXPECT_EQ(one, two);
}

TEST(Training, CancellingKeepsAUsableModel) {
  std::istringstream in(testing::toy_chunking_corpus(50, 4));
  const auto data = read_columns(in, "toy.txt");
  int calls = 0;
  const TrainResult result = train(data, "toy.txt", FeatureTemplate::default_chunking(),
                                   TrainOptions(), {}, [&](const TrainProgress&) {
                                     return ++calls < 3;
                                   });
  EXPECT_TRUE(result.cancelled);
  EXPECT_EQ(result.iterations, 3);
  // The best so far is the model of the third iteration: the same as training 3 iterations.
  TrainOptions three;
  three.max_iterations = 3;
  EXPECT_EQ(result.model.to_bytes(),
            train(data, "toy.txt", FeatureTemplate::default_chunking(), three).model.to_bytes());
}

TEST(Training, DevScoresAreReportedAndBadOptionsNamed) {
  std::istringstream in(testing::toy_chunking_corpus(40, 5));
  const auto data = read_columns(in, "toy.txt");
  double last_f1 = -1.0;
  TrainOptions options;
  options.max_iterations = 15;
  train(data, "toy.txt", FeatureTemplate::default_chunking(), options, data,
        [&](const TrainProgress& p) {
          last_f1 = p.dev_f1;
          return true;
        });
  EXPECT_GT(last_f1, 90.0);
  options.c2 = -1.0;
  try {
    train(data, "toy.txt", FeatureTemplate::default_chunking(), options);
    FAIL();
  } catch (const OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("--c2"), std::string::npos) << e.what();
  }
}


// What loading `path` on `threads` threads gives: the model's bytes, or the error's type and
// message.
std::string load_outcome(const std::string& path, int threads) {
  try {
    return "model " + Model::load(path, kDefaultMaxModelBytes, threads).to_bytes();
  } catch (const ModelError& e) {
    return std::string("ModelError ") + e.what();
  } catch (const FormatError& e) {
    return std::string("FormatError ") + e.what();
  } catch (const IoError& e) {
    return std::string("IoError ") + e.what();
  }
}

// Loading on two threads (the attribute index and the checksum on a helper while the weights
// are read) gives the same model as one thread, and the same error for every corruption: a
// byte changed anywhere in the file (mostly a checksum mismatch, which must win over whatever
// the parse trips on), anywhere in the payload with the checksum made right again (every
// kind of parse error, a repeated attribute name before an error in the weights), and
// truncations; for a separate-counts and an lbfgs model.
TEST_F(ModelFile, LoadingOnTwoThreadsGivesTheSameModelAndTheSameErrors) {
  TrainOptions counts_options;
  counts_options.algorithm = "separate-counts";
  const Model counts =
      train(data_, "toy.txt", FeatureTemplate::default_chunking(), counts_options).model;
  counts.save(dir_.file("counts.model"));
  for (const std::string& file : {path_, dir_.file("counts.model")}) {
    const std::string good = testing::read_text(file);
    ASSERT_EQ(load_outcome(file, 2), load_outcome(file, 1));
    ASSERT_EQ(load_outcome(file, 2).substr(0, 6), "model ");
    const Model two = Model::load(file, kDefaultMaxModelBytes, 2);
    EXPECT_EQ(tag_all(two), tag_all(Model::load(file)));
    uint32_t version = 0;
    std::memcpy(&version, good.data() + 8, 4);
    const std::string payload = good.substr(20, good.size() - 28);
    const std::string bad = dir_.file("bad.model");
    std::size_t checked = 0, parse_errors = 0;
    for (std::size_t at = 0; at < good.size(); at += 1 + good.size() / 150) {
      std::string flipped = good;
      flipped[at] = static_cast<char>(flipped[at] ^ 0x5a);
      testing::write_text(bad, flipped);
      EXPECT_EQ(load_outcome(bad, 2), load_outcome(bad, 1)) << "byte " << at;
      if (at < payload.size()) {
        std::string forged = payload;
        forged[at] = static_cast<char>(forged[at] ^ 0x5a);
        testing::write_text(bad, frame_model_payload(forged, version));
        const std::string one = load_outcome(bad, 1);
        EXPECT_EQ(load_outcome(bad, 2), one) << "payload byte " << at;
        parse_errors += one.rfind("model ", 0) != 0;
      }
      testing::write_text(bad, good.substr(0, at));
      EXPECT_EQ(load_outcome(bad, 2), load_outcome(bad, 1)) << "truncated at " << at;
      ++checked;
    }
    EXPECT_GT(checked, 120u);
    EXPECT_GT(parse_errors, 20u) << file;
  }
  // A repeated attribute name and a bad weight after it: the name is reported, on both; with a
  // wrong checksum as well, the checksum.
  const std::string twice =
      testing::model_with_an_attribute_named_twice({0.5, std::nan(""), 0.125, 0.0});
  const std::string path = dir_.file("twice.model");
  testing::write_text(path, twice);
  EXPECT_NE(load_outcome(path, 1).find("an attribute name occurs twice"), std::string::npos);
  EXPECT_EQ(load_outcome(path, 2), load_outcome(path, 1));
  std::string wrong_sum = twice;
  wrong_sum.back() = static_cast<char>(wrong_sum.back() ^ 1);
  testing::write_text(path, wrong_sum);
  EXPECT_NE(load_outcome(path, 1).find("checksum mismatch"), std::string::npos);
  EXPECT_EQ(load_outcome(path, 2), load_outcome(path, 1));
}

}  // namespace
}  // namespace septa::crf
