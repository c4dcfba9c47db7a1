// Data-parallel SGD with iterative parameter mixing: the result does not depend on the thread
// count, and it reaches the optimum of a small convex problem found by L-BFGS.
#include "crf/optim/sgd.h"

#include <gtest/gtest.h>

#include <cmath>

#include "crf/algorithms/local_training.h"
#include "crf/optim/minimizer.h"
#include "crf/random_data.h"

namespace septa::crf {
namespace {

constexpr std::size_t kA = 8, kL = 3;

struct Problem {
  Dataset data = testing::random_dataset(300, 5, kA, kL, 11);
  std::vector<LocalInstance> instances = node_instances(data);
  SparseFeatures features = instance_features(data, instances, kA, kL, 1, 1, false);
  SoftmaxModelShape shape{&features, kA, kL, 1, nullptr};
};

double objective(const Problem& p, const std::vector<double>& w, double c2) {
  SoftmaxObjective f(p.data, p.instances, p.shape, 1);
  std::vector<double> g(w.size());
  return penalized([&](const double* x, double* grad) { return f.evaluate(x, grad); }, w.data(),
                   g.data(), w.size(), 0.0, c2);
}

TEST(ShardedSgd, SameWeightsForAnyThreadCount) {
  const Problem p;
  ShardedSgdOptions options;
  options.shards = 5;
  options.epochs = 4;
  const ShardedSgd sgd(p.data, p.instances, p.shape, options, std::vector<double>(p.shape.dimension(), 0.0));
  std::vector<double> one(p.shape.dimension(), 0.0);
  fit_sharded_sgd(sgd, options.epochs, options.c2, 1, one, {});
  for (int threads : {2, 3, 8}) {
    std::vector<double> many(p.shape.dimension(), 0.0);
    fit_sharded_sgd(sgd, options.epochs, options.c2, threads, many, {});
    EXPECT_EQ(many, one) << threads << " threads";  // bit-identical, not merely close
  }
}

// The mixed SGD solution against the optimum of the same regularised objective found by
// L-BFGS to convergence: the objective must come within 0.5% of the optimum (and SGD can never
// go below it by more than rounding).
TEST(ShardedSgd, ReachesTheSequentialOptimumOfAConvexProblem) {
  const Problem p;
  const double c2 = 1.0;
  std::vector<double> best(p.shape.dimension(), 0.0);
  SoftmaxObjective f(p.data, p.instances, p.shape, 1);
  MinimizerOptions mo;
  mo.c2 = c2;
  mo.epsilon = 1e-9;
  mo.delta = 1e-12;
  minimize([&](const double* x, double* g) { return f.evaluate(x, g); }, best, mo, {});
  const double optimum = objective(p, best, c2);

  for (std::size_t shards : {1, 4}) {
    ShardedSgdOptions options;
    options.c2 = c2;
    options.shards = shards;
    options.epochs = 40;
    std::vector<double> w(p.shape.dimension(), 0.0);
    const ShardedSgd sgd(p.data, p.instances, p.shape, options, w);
    fit_sharded_sgd(sgd, options.epochs, c2, 2, w, {});
    const double reached = objective(p, w, c2);
    EXPECT_GE(reached, optimum - 1e-9 * std::fabs(optimum)) << shards << " shards";
    EXPECT_LT(reached, optimum * 1.005) << shards << " shards; optimum " << optimum;
  }
}

TEST(ShardedSgd, EpochCallbackStopsTraining) {
  const Problem p;
  ShardedSgdOptions options;
  options.shards = 3;
  std::vector<double> w(p.shape.dimension(), 0.0);
  const ShardedSgd sgd(p.data, p.instances, p.shape, options, w);
  int calls = 0;
  const MinimizerResult r =
      fit_sharded_sgd(sgd, 10, options.c2, 2, w, [&](int, double) { return ++calls < 2; });
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(r.iterations, 2);
  EXPECT_TRUE(r.cancelled);
}

// An instance whose candidate list holds its gold class alone has probability 1, loss 0 and
// gradient 0 whatever the weights: SGD steps over such instances only decay the weights (all
// by the same factor) and report a loss of exactly 0.
TEST(ShardedSgd, GoldOnlyCandidateListsOnlyDecayTheWeights) {
  Problem p;
  CandidateLists lists;
  for (LocalInstance& instance : p.instances) {
    lists.classes.push_back(instance.gold);
    instance.candidates = static_cast<int64_t>(lists.size());
    lists.offsets.push_back(lists.classes.size());
  }
  p.shape.candidates = &lists;
  ShardedSgdOptions options;
  options.shards = 2;
  const std::vector<double> w0 = testing::random_weights(p.shape.dimension(), 1.0, 21);
  const ShardedSgd sgd(p.data, p.instances, p.shape, options, w0);
  std::vector<double> w = w0;
  EXPECT_EQ(sgd.train_shard(0, 1, w.data()), 0.0);
  const double factor = w[0] / w0[0];
  EXPECT_LT(factor, 1.0);
  EXPECT_GT(factor, 0.0);
  for (std::size_t d = 0; d < w.size(); ++d) EXPECT_NEAR(w[d], factor * w0[d], 1e-15) << d;
}

}  // namespace
}  // namespace septa::crf
