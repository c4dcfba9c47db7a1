// Behaviour shared by every training algorithm: accuracy on a learnable toy task, model-file
// round trips, determinism across thread counts, unseen label pairs, and label bias.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "crf/fixtures.h"
#include "bench/label_bias.h"
#include "septa/crf/model.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

const char* kAlgorithms[] = {"lbfgs", "separate", "separate-counts", "piecewise",
                             "memm",  "ap",       "pa",              "arow"};

std::vector<ColumnSentence> toy(std::size_t n, unsigned seed) {
  std::istringstream in(testing::toy_chunking_corpus(n, seed));
  return read_columns(in, "toy.txt");
}

double token_accuracy(const Model& model, const std::vector<ColumnSentence>& data) {
  std::size_t correct = 0, total = 0;
  for (const ColumnSentence& s : data) {
    const auto guess = model.tag(s).labels;
    for (std::size_t t = 0; t < guess.size(); ++t, ++total) correct += guess[t] == s.columns[t].back();
  }
  return static_cast<double>(correct) / static_cast<double>(total);
}

class EveryAlgorithm : public ::testing::TestWithParam<const char*> {
 protected:
  TrainOptions options(int threads = 1) const {
    TrainOptions o;
    o.algorithm = GetParam();
    o.max_iterations = 50;
    o.threads = threads;
    return o;
  }
};

TEST_P(EveryAlgorithm, LearnsTheToyGrammarAndRoundTripsThroughTheModelFile) {
  const auto train_data = toy(150, 1), test_data = toy(50, 2);
  const Model model =
      train(train_data, "toy.txt", FeatureTemplate::default_chunking(), options()).model;
  EXPECT_EQ(model.algorithm(), GetParam());
  EXPECT_GT(token_accuracy(model, test_data), 0.95);
  testing::TempDir dir;
  model.save(dir.file("m.model"));
  const Model loaded = Model::load(dir.file("m.model"));
  EXPECT_EQ(loaded.algorithm(), GetParam());
  EXPECT_EQ(loaded.to_bytes(), model.to_bytes());
  // Inspection works for every algorithm: dump, state and transition features.
  std::ostringstream dump;
  loaded.dump(dump, 5);
  EXPECT_NE(dump.str().find(std::string("ALGORITHM ") + GetParam()), std::string::npos);
  EXPECT_NE(dump.str().find("LABELS 5"), std::string::npos) << dump.str();
  const auto states = loaded.state_features();
  ASSERT_FALSE(states.empty());
  EXPECT_TRUE(std::any_of(states.begin(), states.end(), [](const WeightedFeature& f) {
    return f.from == "U02:the" && f.to == "B-NP" && f.weight > 0.0;
  }));
  EXPECT_FALSE(loaded.transition_features().empty());
  for (const ColumnSentence& s : test_data) {
    const TagResult a = model.tag(s, true), b = loaded.tag(s, true);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.marginals, b.marginals);
    for (const auto& row : a.marginals) {
      double sum = 0.0;
      for (double p : row) sum += p;
      EXPECT_NEAR(sum, 1.0, 1e-9);
    }
  }
}

TEST_P(EveryAlgorithm, SameModelForOneTwoThreeAndEightThreads) {
  const auto data = toy(120, 3);
  const std::string one =
      train(data, "toy.txt", FeatureTemplate::default_chunking(), options(1)).model.to_bytes();
  for (int threads : {2, 3, 8}) {
    const std::string many = train(data, "toy.txt", FeatureTemplate::default_chunking(),
                                   options(threads)).model.to_bytes();
    EXPECT_EQ(one, many) << threads << " threads";
  }
}

// Threads of this process now (Linux /proc), or 0 when unknown.
int process_threads() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  return 0;
}

// Trains with `threads` while a monitor thread samples the process's thread count; returns
// the most threads seen besides the monitor and those that existed before (the idle workers
// that an earlier many-thread training in this process keeps, ordered_parallel.cc).
int most_training_threads(const std::vector<ColumnSentence>& data, const TrainOptions& options) {
  std::atomic<bool> done{false};
  std::atomic<int> most{0};
  const int before = process_threads() - 1;  // besides the calling thread
  std::thread monitor([&] {
    while (!done) {
      most = std::max(most.load(), process_threads() - 1 - before);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  train(data, "toy.txt", FeatureTemplate::default_chunking(), options);
  done = true;
  monitor.join();
  return most;
}

TEST_P(EveryAlgorithm, OneThreadMeansOneThread) {
  if (process_threads() == 0) GTEST_SKIP() << "no /proc/self/status";
  const auto data = toy(300, 6);
  EXPECT_LE(most_training_threads(data, options(1)), 1);  // 0 when training beat the monitor
}

TEST_P(EveryAlgorithm, LabelPairSeenOnlyInTestDataGivesFiniteScores) {
  // Training never has B-VP directly after B-VP; the test sentence does.
  const auto data = toy(80, 4);
  std::istringstream in("the DT B-NP\ndog NN I-NP\nrose VBD B-VP\nsold VBD B-VP\n. . O\n");
  const auto test_data = read_columns(in, "unseen.txt");
  const Model model = train(data, "toy.txt", FeatureTemplate::default_chunking(), options()).model;
  const TagResult r = model.tag(test_data[0], true);
  EXPECT_TRUE(std::isfinite(r.log_probability)) << r.log_probability;
  for (const auto& row : r.marginals)
    for (double p : row) EXPECT_TRUE(std::isfinite(p) && p >= 0.0 && p <= 1.0 + 1e-12);
}

TEST_P(EveryAlgorithm, CancellationKeepsTheModelOfTheLastFinishedStep) {
  // Stopped by the callback at its first report, training must return the model trained so
  // far, not an untrained one: it must beat labelling every token with the most frequent label
  // by far, and for the algorithms whose reports are whole iterations (lbfgs and the online
  // ones) it must be exactly the model of that many iterations run to the end.
  const auto data = toy(60, 5);
  const TrainResult result = train(data, "toy.txt", FeatureTemplate::default_chunking(),
                                   options(), {}, [](const TrainProgress&) { return false; });
  EXPECT_TRUE(result.cancelled);
  std::map<std::string, std::size_t> counts;
  std::size_t items = 0;
  for (const ColumnSentence& s : data)
    for (const auto& token : s.columns) ++counts[token.back()], ++items;
  std::size_t most = 0;
  for (const auto& [label, n] : counts) most = std::max(most, n);
  const double majority = static_cast<double>(most) / static_cast<double>(items);
  EXPECT_GT(token_accuracy(result.model, data), majority + 0.3) << "majority " << majority;
  const std::string algorithm = GetParam();
  if (algorithm == "lbfgs" || algorithm == "ap" || algorithm == "pa" || algorithm == "arow") {
    TrainOptions o = options();
    o.max_iterations = result.iterations;
    const TrainResult full = train(data, "toy.txt", FeatureTemplate::default_chunking(), o);
    EXPECT_FALSE(full.cancelled);
    EXPECT_EQ(full.model.to_bytes(), result.model.to_bytes()) << result.iterations << " iterations";
  }
}

// Token accuracy over positions >= 3 only, where the tokens say nothing about the label.
double accuracy_from_position_3(const Model& model, const std::vector<ColumnSentence>& data) {
  std::size_t correct = 0, total = 0;
  for (const ColumnSentence& s : data) {
    const auto guess = model.tag(s).labels;
    for (std::size_t t = 3; t < guess.size(); ++t, ++total) correct += guess[t] == s.columns[t].back();
  }
  return static_cast<double>(correct) / static_cast<double>(total);
}

TEST_P(EveryAlgorithm, TransitionsCarryTheLabelWhereTheTokensCannot) {
  std::istringstream train_in(testing::transition_only_corpus(80, 11));
  std::istringstream test_in(testing::transition_only_corpus(40, 12));
  const auto train_data = read_columns(train_in, "train.txt");
  const auto test_data = read_columns(test_in, "test.txt");
  const Model model =
      train(train_data, "train.txt", FeatureTemplate::default_chunking(), options()).model;
  EXPECT_GT(accuracy_from_position_3(model, test_data), 0.99);
}

TEST(TransitionOnlyCorpus, IsAtChanceWithoutTransitions) {
  // The corpus really needs transitions: the same training without the B template line
  // (no transition features) labels positions >= 3 at about chance.
  std::istringstream train_in(testing::transition_only_corpus(80, 11));
  std::istringstream test_in(testing::transition_only_corpus(40, 12));
  const auto train_data = read_columns(train_in, "train.txt");
  const auto test_data = read_columns(test_in, "test.txt");
  std::string unigrams_only;
  for (int offset = -2; offset <= 2; ++offset)
    unigrams_only += "U" + std::to_string(offset + 2) + ":%x[" + std::to_string(offset) + ",0]\n";
  TrainOptions options;
  options.max_iterations = 50;
  const Model model =
      train(train_data, "train.txt", FeatureTemplate::parse(unigrams_only, "t"), options).model;
  EXPECT_LT(accuracy_from_position_3(model, test_data), 0.7);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, EveryAlgorithm, ::testing::ValuesIn(kAlgorithms),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

// -a separate with a plain (unstacked) pairwise classifier, the non-default variant: the same
// model for any thread count, a round trip through the file, finite scores for unseen pairs.
TEST(SeparateUnstacked, DeterministicRoundTripsAndFiniteOnUnseenPairs) {
  const auto data = toy(120, 3);
  TrainOptions o;
  o.algorithm = "separate";
  o.stacked_pairs = false;
  o.threads = 1;
  const Model model = train(data, "toy.txt", FeatureTemplate::default_chunking(), o).model;
  const std::string one = model.to_bytes();
  for (int threads : {2, 3, 8}) {
    o.threads = threads;
    EXPECT_EQ(one, train(data, "toy.txt", FeatureTemplate::default_chunking(), o).model.to_bytes())
        << threads << " threads";
  }
  o.stacked_pairs = true;
  EXPECT_NE(one, train(data, "toy.txt", FeatureTemplate::default_chunking(), o).model.to_bytes());
  testing::TempDir dir;
  model.save(dir.file("m.model"));
  const Model loaded = Model::load(dir.file("m.model"));
  std::istringstream in("the DT B-NP\ndog NN I-NP\nrose VBD B-VP\nsold VBD B-VP\n. . O\n");
  const auto test_data = read_columns(in, "unseen.txt");
  const TagResult a = model.tag(test_data[0], true), b = loaded.tag(test_data[0], true);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.marginals, b.marginals);
  EXPECT_TRUE(std::isfinite(a.log_probability)) << a.log_probability;
  EXPECT_GT(token_accuracy(model, toy(50, 2)), 0.95);
  // Without a beam only the unstacked factor trains (the stacked one would list every pair).
  o.pair_beam = 0.0;
  EXPECT_THROW(train(data, "toy.txt", FeatureTemplate::default_chunking(), o), OptionError);
  o.stacked_pairs = false;
  EXPECT_GT(token_accuracy(train(data, "toy.txt", FeatureTemplate::default_chunking(), o).model,
                           toy(50, 2)),
            0.95);
}

TEST(LabelBias, MemmSuffersAndSeparateAndStandardTrainingDoNot) {
  const auto train_data = generate_rib_rob(600, 7);
  const auto test_data = generate_rib_rob(300, 8);
  const FeatureTemplate features = FeatureTemplate::parse("U00:%x[0,0]\nB\n", "t");
  std::map<std::string, double> error;
  for (const char* algorithm : {"lbfgs", "separate", "memm"}) {
    TrainOptions options;
    options.algorithm = algorithm;
    error[algorithm] = 1.0 - token_accuracy(train(train_data, "rib", features, options).model,
                                            test_data);
  }
  EXPECT_LT(error["lbfgs"], 0.10);
  EXPECT_LT(error["separate"], 0.10);
  EXPECT_GT(error["memm"], 0.25);
  EXPECT_GT(error["memm"], error["separate"] + 0.15);
}

TEST(LabelBias, GeneratorFollowsTheSource) {
  const auto data = generate_rib_rob(4000, 3);
  std::size_t noisy = 0, rib = 0;
  for (const ColumnSentence& s : data) {
    ASSERT_EQ(s.columns.size(), 3u);
    const bool is_rib = s.columns[1][1] == "i2";
    rib += is_rib;
    EXPECT_EQ(s.columns[0][1], is_rib ? "r1" : "r4");
    EXPECT_EQ(s.columns[2][1], "b3");
    noisy += s.columns[0][0] != "r";
  }
  EXPECT_NEAR(rib / 4000.0, 0.5, 0.03);
  EXPECT_NEAR(noisy / 4000.0, 3.0 / 32.0, 0.015);  // 29/32 of symbols are the true one
}

}  // namespace
}  // namespace septa::crf
