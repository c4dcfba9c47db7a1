// --checkpoint / --resume: a run stopped after any epoch of any factor and resumed from its
// checkpoint gives the model of an uninterrupted run, byte for byte.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "crf/fixtures.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

std::vector<ColumnSentence> toy(std::size_t n, unsigned seed) {
  std::istringstream in(testing::toy_chunking_corpus(n, seed));
  return read_columns(in, "toy.txt");
}

TrainOptions sgd_options(const char* algorithm) {
  TrainOptions o;
  o.algorithm = algorithm;
  o.epochs = 4;
  o.shards = 3;
  o.threads = 2;
  return o;
}

class CheckpointResume : public ::testing::TestWithParam<const char*> {};

TEST_P(CheckpointResume, StoppedAfterAnyEpochAndResumedEqualsUninterrupted) {
  const auto data = toy(120, 3);
  const FeatureTemplate feature_template = FeatureTemplate::default_chunking();
  const std::string expected =
      train(data, "toy.txt", feature_template, sgd_options(GetParam())).model.to_bytes();
  testing::TempDir dir;
  // Stop after the k-th progress report (an epoch of some factor), then resume.
  for (int stop_after = 1;; ++stop_after) {
    std::remove(dir.file("state.ckpt").c_str());
    TrainOptions first = sgd_options(GetParam());
    first.checkpoint = dir.file("state.ckpt");
    first.checkpoint_every = 1 + stop_after % 2;  // every epoch, or every other one
    int reports = 0;
    const TrainResult stopped = train(data, "toy.txt", feature_template, first, {},
                                      [&](const TrainProgress&) { return ++reports < stop_after; });
    if (!stopped.cancelled) break;  // stopped after the last epoch: every point was covered
    TrainOptions second = sgd_options(GetParam());
    second.threads = 1;  // resuming on another thread count changes nothing
    // Every other epoch: the last checkpoint may be older than the stop (or not written yet).
    if (std::ifstream(first.checkpoint).good()) second.resume = first.checkpoint;
    const TrainResult resumed = train(data, "toy.txt", feature_template, second);
    EXPECT_FALSE(resumed.cancelled);
    EXPECT_EQ(resumed.model.to_bytes(), expected) << "stopped after report " << stop_after;
    ASSERT_LT(stop_after, 20);
  }
}

INSTANTIATE_TEST_SUITE_P(Sgd, CheckpointResume, ::testing::Values("separate", "memm"));

TEST(Checkpoint, RefusesLbfgsAndOtherOptions) {
  const auto data = toy(30, 4);
  testing::TempDir dir;
  TrainOptions lbfgs;
  lbfgs.checkpoint = dir.file("x.ckpt");
  EXPECT_THROW(train(data, "toy.txt", FeatureTemplate::default_chunking(), lbfgs), OptionError);
  TrainOptions first = sgd_options("separate");
  first.checkpoint = dir.file("s.ckpt");
  train(data, "toy.txt", FeatureTemplate::default_chunking(), first);
  TrainOptions other = sgd_options("separate");
  other.c2 = 0.5;
  other.resume = first.checkpoint;
  try {
    train(data, "toy.txt", FeatureTemplate::default_chunking(), other);
    ADD_FAILURE() << "resumed with another c2";
  } catch (const OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("other training options"), std::string::npos);
  }
  testing::write_text(dir.file("bad.ckpt"), "not a checkpoint at all");
  other.c2 = first.c2;
  other.resume = dir.file("bad.ckpt");
  EXPECT_THROW(train(data, "toy.txt", FeatureTemplate::default_chunking(), other), ModelError);
}

}  // namespace
}  // namespace septa::crf
