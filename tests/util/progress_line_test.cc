#include "util/progress_line.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "septa/crf/trainer.h"

namespace septa::util {
namespace {

TEST(ProgressLine, IterationWithAndWithoutHeldOutScores) {
  IterationProgress p;
  p.phase = "lbfgs";
  p.iteration = 12;
  p.objective = 1234.5;
  p.grad_norm = 0.5;
  p.active_features = 4000;
  p.seconds = 1.234;
  EXPECT_EQ(format_iteration(p), "lbfgs    iter   12  objective 1234.5  |g| 0.5  active 4000  1.23s");
  p.dev_accuracy = 95.1;
  EXPECT_EQ(format_iteration(p),
            "lbfgs    iter   12  objective 1234.5  |g| 0.5  active 4000  1.23s  dev acc 95.10");
  p.dev_f1 = 93.2;
  EXPECT_EQ(format_iteration(p), "lbfgs    iter   12  objective 1234.5  |g| 0.5  active 4000  1.23s"
                                 "  dev acc 95.10 F1 93.20");
  p.phase = "pairwise-long";  // wider than its column: pushed right, never cut
  p.dev_accuracy = NAN;
  EXPECT_EQ(format_iteration(p).substr(0, 24), "pairwise-long iter   12 ");
}

TEST(ProgressLine, CrfFormatProgressIsTheSharedLine) {
  crf::TrainProgress c;
  c.phase = "unary";
  c.iteration = 3;
  c.objective = -2.5e-7;
  c.grad_norm = 12345678;
  c.active_features = 7;
  c.seconds = 0.25;
  c.dev_accuracy = 50;
  c.dev_f1 = 0;
  IterationProgress u;
  u.phase = "unary";
  u.iteration = 3;
  u.objective = -2.5e-7;
  u.grad_norm = 12345678;
  u.active_features = 7;
  u.seconds = 0.25;
  u.dev_accuracy = 50;
  u.dev_f1 = 0;
  EXPECT_EQ(crf::format_progress(c), format_iteration(u));
  EXPECT_EQ(crf::format_progress(c),
            "unary    iter    3  objective -2.5e-07  |g| 1.235e+07  active 7  0.25s  dev acc 50.00 F1 0.00");
}

TEST(ProgressLine, EpochMetricsInNameOrder) {
  const std::map<std::string, double> metrics = {{"test accuracy", 0.912345678}, {"loss", 0.125}};
  EXPECT_EQ(format_epoch("cell 0", 3, 10, metrics, 12.34),
            "[cell 0] epoch 3/10  loss 0.12500  test accuracy 0.91235  12.3s");
  EXPECT_EQ(format_epoch("head", 1, 1, {}, 0.04), "[head] epoch 1/1  0.0s");
}

TEST(ProgressLine, AStageWithoutEpochsIsItsNameAlone) {
  EXPECT_EQ(format_epoch("sentencepiece: training on 12 lines", 0, 0, {{"loss", 1.0}}, 5.0),
            "sentencepiece: training on 12 lines");
}

}  // namespace
}  // namespace septa::util
