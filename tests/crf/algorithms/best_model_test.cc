// Keeping the best model by dev score: one metric for every iteration, and the kept iteration
// reported (issue 16, finding 1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "crf/algorithms/training_context.h"
#include "crf/fixtures.h"
#include "septa/crf/evaluation.h"
#include "septa/crf/trainer.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

TrainProgress dev_scores(int iteration, double accuracy, double f1) {
  TrainProgress p;
  p.iteration = iteration;
  p.dev_accuracy = accuracy;
  p.dev_f1 = f1;
  return p;
}

TEST(BestWeights, AnAllOIterationWithHighAccuracyDoesNotBeatLaterF1) {
  // The NER case: iteration 1 tags everything O (F1 0, accuracy 83), later ones find entities.
  BestWeights best;
  const double w1[] = {1.0}, w2[] = {2.0}, w3[] = {3.0};
  EXPECT_TRUE(best.offer(w1, 1, dev_scores(1, 83.25, 0.0)));
  EXPECT_TRUE(best.offer(w2, 1, dev_scores(2, 80.0, 40.0)));
  EXPECT_TRUE(best.offer(w3, 1, dev_scores(3, 95.0, 80.41)));
  EXPECT_FALSE(best.offer(w1, 1, dev_scores(4, 96.0, 79.0)));
  EXPECT_EQ(best.weights(), std::vector<double>{3.0});
  EXPECT_EQ(best.iteration(), 3);
  EXPECT_EQ(best.metric(), "F1");
  EXPECT_DOUBLE_EQ(best.score(), 80.41);
}

TEST(BestWeights, RanksByAccuracyWhenTheDevSetHasNoChunks) {
  BestWeights best;
  const double w1[] = {1.0}, w2[] = {2.0};
  EXPECT_TRUE(best.offer(w1, 1, dev_scores(1, 90.0, NAN)));
  EXPECT_FALSE(best.offer(w2, 1, dev_scores(2, 89.0, NAN)));
  EXPECT_EQ(best.iteration(), 1);
  EXPECT_EQ(best.metric(), "accuracy");
}

TEST(BestWeights, WithoutDevDataTheLatestIsKept) {
  BestWeights best;
  const double w1[] = {1.0}, w2[] = {2.0};
  EXPECT_TRUE(best.offer(w1, 1, dev_scores(1, NAN, NAN)));
  EXPECT_TRUE(best.offer(w2, 1, dev_scores(2, NAN, NAN)));
  EXPECT_EQ(best.weights(), std::vector<double>{2.0});
  EXPECT_EQ(best.metric(), "");
}

std::vector<ColumnSentence> toy(std::size_t n, unsigned seed) {
  std::istringstream in(testing::toy_chunking_corpus(n, seed));
  return read_columns(in, "toy.txt");
}

double chunk_f1(const Model& model, const std::vector<ColumnSentence>& data) {
  ChunkEvaluator evaluator;
  for (const ColumnSentence& s : data) {
    std::vector<std::string> gold;
    for (const auto& columns : s.columns) gold.push_back(columns.back());
    evaluator.add_sentence(gold, model.tag(s).labels);
  }
  return evaluator.result().overall.f1();
}

// 12 lbfgs iterations on a toy chunking corpus with DEV scored; every progress record in SEEN.
TrainResult train_toy_with_dev(const std::vector<ColumnSentence>& dev, std::vector<TrainProgress>& seen) {
  TrainOptions options;
  options.max_iterations = 12;
  return train(toy(60, 1), "toy.txt", FeatureTemplate::default_chunking(), options, dev,
               [&](const TrainProgress& p) {
                 seen.push_back(p);
                 return true;
               });
}

TEST(BestModel, TheSavedModelScoresTheBestReportedDevF1AndNamesItsIteration) {
  const auto dev = toy(40, 2);
  std::vector<TrainProgress> seen;
  const TrainResult result = train_toy_with_dev(dev, seen);
  ASSERT_FALSE(seen.empty());
  double best_f1 = -1.0;
  int best_iteration = -1;
  for (const TrainProgress& p : seen) {
    ASSERT_FALSE(std::isnan(p.dev_f1));  // the toy corpus has chunks at every iteration
    if (p.dev_f1 >= best_f1) best_f1 = p.dev_f1, best_iteration = p.iteration;
  }
  EXPECT_EQ(result.kept_metric, "F1");
  EXPECT_EQ(result.kept_iteration, best_iteration);
  EXPECT_DOUBLE_EQ(result.kept_score, best_f1);
  EXPECT_NEAR(chunk_f1(result.model, dev), best_f1, 1e-9);
}

// CRFsuite's holdout counts (python-crfsuite's per-label `scores`) are those of the kept
// model's predictions, and the reporting fields describe the weights reported.
TEST(BestModel, DevLabelCountsAreThoseOfTheKeptModelsPredictions) {
  const auto dev = toy(40, 2);
  std::vector<TrainProgress> seen;
  const TrainResult result = train_toy_with_dev(dev, seen);
  ASSERT_FALSE(seen.empty());
  for (const TrainProgress& p : seen) {
    EXPECT_GE(p.linesearch_trials, 1);
    EXPECT_GT(p.linesearch_step, 0.0);
    EXPECT_GT(p.feature_norm, 0.0);
  }
  const TrainProgress& kept = result.kept_iteration > 0 ? seen[result.kept_iteration - 1] : seen.back();
  ASSERT_EQ(kept.dev_labels.size(), result.model.labels().size());
  std::size_t items = 0, items_correct = 0, sequences_correct = 0;
  for (std::size_t y = 0; y < kept.dev_labels.size(); ++y) {
    const auto& counts = kept.dev_labels[y];
    EXPECT_EQ(counts.label, result.model.labels()[y]);
    std::size_t match = 0, model = 0, ref = 0;
    for (const ColumnSentence& s : dev) {
      const std::vector<std::string> guess = s.columns.empty() ? std::vector<std::string>{}
                                                               : result.model.tag(s).labels;
      for (std::size_t t = 0; t < guess.size(); ++t) {
        const std::string& gold = s.columns[t].back();
        model += guess[t] == counts.label;
        ref += gold == counts.label;
        match += guess[t] == counts.label && gold == counts.label;
      }
    }
    EXPECT_EQ(counts.match, match) << counts.label;
    EXPECT_EQ(counts.model, model) << counts.label;
    EXPECT_EQ(counts.ref, ref) << counts.label;
    items += model;
    items_correct += match;
  }
  for (const ColumnSentence& s : dev) {
    if (s.columns.empty()) continue;
    const std::vector<std::string> guess = result.model.tag(s).labels;
    bool all = true;
    for (std::size_t t = 0; t < guess.size(); ++t) all = all && guess[t] == s.columns[t].back();
    sequences_correct += all;
  }
  EXPECT_EQ(kept.dev_items, items);
  EXPECT_EQ(kept.dev_items_correct, items_correct);
  EXPECT_NEAR(kept.dev_accuracy, 100.0 * static_cast<double>(items_correct) / items, 1e-9);
  EXPECT_EQ(kept.dev_sequences_correct, sequences_correct);
  // Without dev data the last iterate is the model: its norm is the reported one.
  const auto train_data = toy(60, 1);
  TrainOptions options;
  options.max_iterations = 12;
  const TrainResult plain =
      train(train_data, "toy.txt", FeatureTemplate::default_chunking(), options, {},
            [&](const TrainProgress& p) {
              seen.push_back(p);
              return true;
            });
  double norm2 = 0.0;
  for (const auto& f : plain.model.state_features()) norm2 += f.weight * f.weight;
  for (const auto& f : plain.model.transition_features()) norm2 += f.weight * f.weight;
  EXPECT_NEAR(seen.back().feature_norm, std::sqrt(norm2), 1e-9 * std::sqrt(norm2));
  EXPECT_TRUE(seen.back().dev_labels.empty());
}

TEST(C2Auto, ChoosesOnTheDevDataAndBeatsTheStrongestPenalty) {
  const auto train_data = toy(40, 3), dev = toy(40, 4);
  TrainOptions options;
  options.c2_auto = true;
  std::vector<std::string> phases;
  const TrainResult chosen =
      train(train_data, "toy.txt", FeatureTemplate::default_chunking(), options, dev,
            [&](const TrainProgress& p) {
              if (phases.empty() || phases.back() != p.phase) phases.push_back(p.phase);
              return true;
            });
  // The path, strong to weak, then (unless the chosen stage had converged) the final run.
  const std::vector<std::string> path = {"c2=10",  "c2=3",    "c2=1",   "c2=0.3",
                                         "c2=0.1", "c2=0.03", "c2=0.01"};
  ASSERT_GE(phases.size(), path.size());
  EXPECT_EQ(std::vector<std::string>(phases.begin(), phases.begin() + 7), path);
  const std::vector<double> values = {10, 3, 1, 0.3, 0.1, 0.03, 0.01};
  EXPECT_NE(std::find(values.begin(), values.end(), chosen.chosen_c2), values.end())
      << chosen.chosen_c2;
  TrainOptions strong;
  strong.c2 = 10.0;
  const TrainResult heavy =
      train(train_data, "toy.txt", FeatureTemplate::default_chunking(), strong, dev);
  EXPECT_GE(chunk_f1(chosen.model, dev), chunk_f1(heavy.model, dev));
  EXPECT_TRUE(std::isnan(heavy.chosen_c2));
}

TEST(C2Auto, NeedsDevDataAndLbfgs) {
  const auto train_data = toy(10, 3);
  TrainOptions options;
  set_train_option(options, "c2", "auto");
  EXPECT_TRUE(options.c2_auto);
  EXPECT_THROW(train(train_data, "toy.txt", FeatureTemplate::default_chunking(), options),
               OptionError);
  options.algorithm = "separate";
  EXPECT_THROW(train(train_data, "toy.txt", FeatureTemplate::default_chunking(), options,
                     toy(5, 4)),
               OptionError);
}

}  // namespace
}  // namespace septa::crf
