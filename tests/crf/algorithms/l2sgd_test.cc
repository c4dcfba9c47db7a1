// -a l2sgd: CRFsuite's SGD with L2 regularisation and a calibrated learning rate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
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

const FeatureTemplate& chunking() {
  static const FeatureTemplate t = FeatureTemplate::default_chunking();
  return t;
}

// The lowest objective reported in `phase` (the l2sgd epochs, or lbfgs iterations).
struct Recorder {
  explicit Recorder(std::string p) : phase(std::move(p)) {}
  std::string phase;
  double lowest = DBL_MAX;
  std::vector<std::string> phases;
  ProgressCallback callback() {
    return [this](const TrainProgress& p) {
      phases.push_back(p.phase);
      if (p.phase == phase) lowest = std::min(lowest, p.objective);
      return true;
    };
  }
};

// SGD minimises the objective of -a lbfgs (sum of -log P + c2 |w|^2): it gets close to the
// L-BFGS optimum for the same c2.
TEST(L2Sgd, ReachesTheLbfgsOptimumOfTheSameObjective) {
  const auto data = toy(150, 1);
  for (double c2 : {1.0, 0.1}) {
    TrainOptions options;
    options.c2 = c2;
    options.threads = 1;
    Recorder lbfgs("lbfgs"), sgd("l2sgd");
    train(data, "toy.txt", chunking(), options, {}, lbfgs.callback());
    options.algorithm = "l2sgd";
    const TrainResult result = train(data, "toy.txt", chunking(), options, {}, sgd.callback());
    EXPECT_GT(sgd.lowest, lbfgs.lowest * (1 - 1e-9)) << c2;  // never below the optimum
    EXPECT_LT(sgd.lowest, lbfgs.lowest * 1.01) << "c2=" << c2 << " lbfgs " << lbfgs.lowest;
    EXPECT_GT(result.chosen_eta, 0.0);
    // The calibration's rates are calibration.eta times powers of calibration.rate.
    const double k = std::log2(result.chosen_eta / 0.1);
    EXPECT_NEAR(k, std::round(k), 1e-9) << result.chosen_eta;
    EXPECT_EQ(sgd.phases.front().rfind("calibrate eta=0.1", 0), 0u) << sgd.phases.front();
  }
}

TEST(L2Sgd, SameModelForAnyThreadCountAndSeedDecidesTheOrder) {
  const auto data = toy(80, 2);
  TrainOptions options;
  options.algorithm = "l2sgd";
  options.max_iterations = 5;
  options.threads = 1;
  const std::string one = train(data, "toy.txt", chunking(), options).model.to_bytes();
  options.threads = 4;
  EXPECT_EQ(train(data, "toy.txt", chunking(), options).model.to_bytes(), one);
  options.seed = 7;
  EXPECT_NE(train(data, "toy.txt", chunking(), options).model.to_bytes(), one);
}

TEST(L2Sgd, CalibrationOptionsReachTheCalibration) {
  const auto data = toy(60, 3);
  TrainOptions options;
  options.algorithm = "l2sgd";
  options.max_iterations = 3;
  options.calibration_max_trials = 3;
  options.calibration_eta = 0.01;
  options.calibration_rate = 3.0;
  Recorder recorder("l2sgd");
  const TrainResult result = train(data, "toy.txt", chunking(), options, {}, recorder.callback());
  const auto calibrations = std::count_if(recorder.phases.begin(), recorder.phases.end(),
                                          [](const std::string& p) { return p.rfind("calibrate", 0) == 0; });
  EXPECT_EQ(calibrations, 2);  // trials 1 and 2; the third would reach max_trials
  EXPECT_EQ(recorder.phases[0], "calibrate eta=0.01");
  EXPECT_EQ(recorder.phases[1], "calibrate eta=0.03");
  EXPECT_EQ(result.iterations, 3);
}

TEST(L2Sgd, DevDataKeepsTheBestEpochAndCancellingKeepsAModel) {
  const auto data = toy(60, 4), dev = toy(20, 5);
  TrainOptions options;
  options.algorithm = "l2sgd";
  options.max_iterations = 6;
  options.period = 100;
  const TrainResult result = train(data, "toy.txt", chunking(), options, dev);
  EXPECT_GE(result.kept_iteration, 1);
  EXPECT_EQ(result.kept_metric, "F1");
  int epochs = 0;
  const TrainResult stopped =
      train(data, "toy.txt", chunking(), options, {}, [&](const TrainProgress& p) {
        return p.phase != "l2sgd" || ++epochs < 2;
      });
  EXPECT_TRUE(stopped.cancelled);
  EXPECT_EQ(stopped.iterations, 2);
  EXPECT_FALSE(stopped.model.empty());
}

TEST(L2Sgd, OptionsAreChecked) {
  TrainOptions options;
  EXPECT_THROW(set_train_option(options, "calibration-rate", "1"), OptionError);
  EXPECT_THROW(set_train_option(options, "calibration-samples", "0"), OptionError);
  EXPECT_THROW(set_train_option(options, "calibration-eta", "-1"), OptionError);
  set_train_option(options, "calibration-candidates", "3");
  EXPECT_EQ(options.calibration_candidates, 3);
  options.algorithm = "l2sgd";
  EXPECT_EQ(inapplicable_reason(options, "calibration-eta"), "");
  EXPECT_EQ(inapplicable_reason(options, "delta"), "");
  EXPECT_NE(inapplicable_reason(options, "num-memories"), "");
  options.algorithm = "lbfgs";
  EXPECT_NE(inapplicable_reason(options, "calibration-eta"), "");
  options.algorithm = "l2sgd";
  options.c2 = 0.0;
  EXPECT_THROW(train(toy(5, 1), "toy.txt", chunking(), options), OptionError);
}

}  // namespace
}  // namespace septa::crf
