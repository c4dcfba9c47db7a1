#include "septa/crf/model.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "crf/fixtures.h"
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

TEST_F(ModelFile, MarginalsSumToOneAndProbabilityIsConsistent) {
  for (const ColumnSentence& s : data_) {
    const TagResult r = model_.tag(s, /*marginals=*/true);
    ASSERT_EQ(r.marginals.size(), s.columns.size());
    for (const auto& row : r.marginals) {
      double sum = 0.0;
      for (double p : row) sum += p;
      EXPECT_NEAR(sum, 1.0, 1e-9);
    }
    EXPECT_LE(r.log_probability, 1e-12);
    EXPECT_GT(r.log_probability, -50.0);
  }
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
  EXPECT_EQ(result.model.tag(data[0]).labels.size(), data[0].columns.size());
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

}  // namespace
}  // namespace septa::crf
