// The factors of separate training: each factor's penalty set from its own data (factor_c2),
// the one fit_local actually optimises by either local optimiser, and each factor's passes.
#include "crf/algorithms/local_training.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>

#include "crf/fixtures.h"
#include "crf/optim/sgd.h"
#include "septa/crf/trainer.h"
#include "crf/random_data.h"
#include "septa/crf/feature_template.h"

namespace septa::crf {
namespace {

constexpr std::size_t kA = 8, kL = 3;

TEST(FactorC2, ScalesTheSequencePenaltyToTheFactorsInstances) {
  EXPECT_DOUBLE_EQ(factor_c2(1.0, 10, 230), 10.0 / 230.0);
  EXPECT_DOUBLE_EQ(factor_c2(0.5, 8936, 211727), 0.5 * 8936.0 / 211727.0);
  EXPECT_DOUBLE_EQ(factor_c2(2.0, 10, 5), 2.0);  // never stronger than --c2
  EXPECT_DOUBLE_EQ(factor_c2(2.0, 10, 0), 2.0);  // no instances: nothing to scale by
  EXPECT_EQ(factor_c2(0.0, 10, 230), 0.0);
}

// A context around a small random problem (no dev data, no progress callback).
struct Fixture {
  Dataset data = testing::random_dataset(200, 5, kA, kL, 3);
  Encoder encoder{FeatureTemplate::default_chunking()};
  TrainOptions options;
  Dataset dev;
  std::vector<std::vector<std::string>> dev_gold;
  ProgressCallback progress;
  std::vector<LocalInstance> instances = node_instances(data);
  SparseFeatures features = instance_features(data, instances, kA, kL, 1, 1, false);
  SoftmaxModelShape shape{&features, kA, kL, 1, nullptr};
  TrainingContext context() const {
    return TrainingContext{data, encoder, options, dev, dev_gold, progress,
                           std::chrono::steady_clock::now()};
  }
  // |gradient| of the data term + c2 ||w||^2 at w.
  double gradient_norm(const std::vector<double>& w, double c2) const {
    SoftmaxObjective f(data, instances, shape, 1);
    std::vector<double> g(w.size());
    penalized([&](const double* x, double* grad) { return f.evaluate(x, grad); }, w.data(),
              g.data(), w.size(), 0.0, c2);
    double sum = 0.0;
    for (double x : g) sum += x * x;
    return std::sqrt(sum);
  }
};

TEST(FitLocal, LbfgsMinimisesTheGivenPenaltyNotTheOption) {
  Fixture fx;
  fx.options.local_sgd = false;
  fx.options.c2 = 1.0;
  fx.options.epsilon = 1e-9;
  fx.options.delta = 1e-12;
  const double c2 = factor_c2(fx.options.c2, fx.data.size(), fx.instances.size());
  ASSERT_LT(c2, 0.5);
  SharedProgress shared;
  std::vector<double> w(fx.shape.dimension(), 0.0);
  fit_local(fx.context(), "unary", fx.instances, fx.shape, 2, w, shared, c2);
  // At the optimum of its own objective the gradient vanishes; the option's penalty differs
  // by 2 (c2_option - c2) w there, far from zero.
  EXPECT_LT(fx.gradient_norm(w, c2), 1e-3);
  EXPECT_GT(fx.gradient_norm(w, fx.options.c2), 0.1);
}

TEST(FitLocal, SgdTrainsWithTheGivenPenalty) {
  Fixture fx;
  fx.options.epochs = 3;
  fx.options.shards = 3;
  const double c2 = factor_c2(fx.options.c2, fx.data.size(), fx.instances.size());
  SharedProgress shared;
  std::vector<double> fitted(fx.shape.dimension(), 0.0);
  fit_local(fx.context(), "unary", fx.instances, fx.shape, 2, fitted, shared, c2);

  ShardedSgdOptions options;
  options.c2 = c2;
  options.epochs = fx.options.epochs;
  options.shards = static_cast<std::size_t>(fx.options.shards);
  options.mixes = static_cast<std::size_t>(fx.options.mixes);
  options.seed = fx.options.seed;
  std::vector<double> direct(fx.shape.dimension(), 0.0);
  const ShardedSgd sgd(fx.data, fx.instances, fx.shape, options, direct);
  fit_sharded_sgd(sgd, options.epochs, c2, 1, direct, {});
  EXPECT_EQ(fitted, direct);  // bit for bit

  std::vector<double> with_option(fx.shape.dimension(), 0.0);
  fit_local(fx.context(), "unary", fx.instances, fx.shape, 2, with_option, shared);
  EXPECT_NE(with_option, direct);  // NaN (default): --c2 itself, a different model
}

// -a separate: the unary factor makes --unary-epochs passes, the pairwise one --epochs.
TEST(SeparateEpochs, EachFactorMakesItsOwnPasses) {
  std::istringstream in(testing::toy_chunking_corpus(60, 5));
  const std::vector<ColumnSentence> data = read_columns(in, "toy.txt");
  TrainOptions options;
  options.algorithm = "separate";
  options.threads = 2;
  options.epochs = 2;
  options.unary_epochs = 4;
  std::map<std::string, int> passes;
  const TrainResult result =
      train(data, "toy.txt", FeatureTemplate::default_chunking(), options, {},
            [&](const TrainProgress& p) {
              passes[p.phase] = std::max(passes[p.phase], p.iteration);
              return true;
            });
  EXPECT_EQ(passes["unary"], 4);
  EXPECT_EQ(passes["pairwise"], 2);
  EXPECT_EQ(result.iterations, 6);
}

// --unary-mixes sets the unary factor's mixes per epoch (0: --mixes): 0 and the value of
// --mixes give the same model bit for bit, another value another model, and that model is the
// same for 1, 2, 3 and 8 threads.
TEST(SeparateMixes, UnaryMixesDriveTheUnaryFactor) {
  std::istringstream in(testing::toy_chunking_corpus(60, 5));
  const std::vector<ColumnSentence> data = read_columns(in, "toy.txt");
  const auto model = [&](int unary_mixes, int threads) {
    TrainOptions options;
    options.algorithm = "separate";
    options.threads = threads;
    options.mixes = 4;
    options.unary_mixes = unary_mixes;
    return train(data, "toy.txt", FeatureTemplate::default_chunking(), options).model.to_bytes();
  };
  const std::string by_default = model(0, 2);
  EXPECT_EQ(model(4, 2), by_default);
  const std::string two = model(2, 1);
  EXPECT_NE(two, by_default);
  for (int threads : {2, 3, 8}) EXPECT_EQ(model(2, threads), two) << threads << " threads";
}

}  // namespace
}  // namespace septa::crf
