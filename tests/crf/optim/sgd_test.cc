// Data-parallel SGD with iterative parameter mixing: the result does not depend on the thread
// count, and it reaches the optimum of a small convex problem found by L-BFGS.
#include "crf/optim/sgd.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>
#include <utility>

#include "crf/algorithms/local_training.h"
#include "crf/optim/minimizer.h"
#include "crf/optim/only_gold.h"
#include "crf/random_data.h"
#include "crf/thread_communicator.h"

namespace septa::crf {
namespace {

using test_support::ThreadCommunicator;
using test_support::ThreadGroup;

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
  for (std::size_t mixes : {1, 3}) {
    ShardedSgdOptions options;
    options.shards = 5;
    options.mixes = mixes;
    options.epochs = 4;
    const ShardedSgd sgd(p.data, p.instances, p.shape, options,
                         std::vector<double>(p.shape.dimension(), 0.0));
    std::vector<double> one(p.shape.dimension(), 0.0);
    fit_sharded_sgd(sgd, options.epochs, options.c2, 1, one, {});
    for (int threads : {2, 3, 8}) {
      std::vector<double> many(p.shape.dimension(), 0.0);
      fit_sharded_sgd(sgd, options.epochs, options.c2, threads, many, {});
      EXPECT_EQ(many, one) << threads << " threads, " << mixes << " mixes";  // bit-identical
    }
  }
}

// The same with the mix's heaviest ranges accumulated in pieces (ShardMix::plan_pieces): ten
// attributes in every item hold the lowest feature ids, so at 8 and 16 threads the first ranges
// hold more than a thread's share of the shards' entries and are cut (66 and 69 tasks instead
// of 64); a piece whose weights the merge lost fails this (checked); their order in the merge
// moves only the last bits of the step search's sums, which rarely flip the step.
TEST(ShardedSgd, SameWeightsWhenHeavyRangesAreCutIntoPieces) {
  constexpr std::size_t A = 2000;
  Dataset data;
  std::mt19937 random(21);
  for (int n = 0; n < 400; ++n) {
    for (unsigned t = 0; t <= random() % 6; ++t) {
      for (int32_t common = 0; common < 10; ++common) data.add_attribute(common, 1.0f);
      for (int e = 0; e < 2; ++e) data.add_attribute(static_cast<int32_t>(10 + random() % (A - 10)), 1.0f);
      data.end_item(static_cast<int32_t>(random() % kL));
    }
    data.end_sequence(1.0);
  }
  const std::vector<LocalInstance> instances = node_instances(data);
  const SparseFeatures features = instance_features(data, instances, A, kL, 1, 1, false);
  const SoftmaxModelShape shape{&features, A, kL, 1, nullptr};
  ShardedSgdOptions options;
  options.shards = 16;
  options.mixes = 4;
  options.epochs = 2;
  const ShardedSgd sgd(data, instances, shape, options, std::vector<double>(shape.dimension(), 0.0));
  std::vector<double> one(shape.dimension(), 0.0);
  fit_sharded_sgd(sgd, options.epochs, options.c2, 1, one, {});
  for (int threads : {8, 16}) {
    std::vector<double> many(shape.dimension(), 0.0);
    fit_sharded_sgd(sgd, options.epochs, options.c2, threads, many, {});
    EXPECT_EQ(many, one) << threads << " threads";  // bit-identical
  }
}

// One epoch of one mix against the mix written out densely (sgd.h), on a problem with rare
// attributes (2,000 of them, about 1,800 occurrences, and one in every item: most weights are updated by some shards
// only; the features come from all the data and the SGD sees 60% of it, so some weights are
// updated by none): each shard's pass from w0 (train_shard), the weights it updated (every
// feature of its instances' attributes, and the bias row), Delta_d the mean step of the shards
// that updated d, the share-weighted step for the biases, the mean decay a for the others, then
// w0 + gamma Delta with the step search's gamma for that Delta.
TEST(ShardedSgd, SparseMixEqualsTheDenseFormula) {
  constexpr std::size_t A = 2000;
  Dataset data;  // each item: attribute 0 (in every shard) and two of the 2,000 others at random
  std::mt19937 random(12);
  for (int n = 0; n < 300; ++n) {
    for (unsigned t = 0; t <= random() % 5; ++t) {
      data.add_attribute(0, 1.0f);
      for (int e = 0; e < 2; ++e) data.add_attribute(1 + random() % (A - 1), 0.5f + (random() % 8) / 8.0f);
      data.end_item(static_cast<int32_t>(random() % kL));
    }
    data.end_sequence(1.0);
  }
  const std::vector<LocalInstance> all = node_instances(data);
  const SparseFeatures features = instance_features(data, all, A, kL, 1, 1, false);
  const std::vector<LocalInstance> instances(all.begin(), all.begin() + all.size() * 6 / 10);
  const SoftmaxModelShape shape{&features, A, kL, 1, nullptr};
  ShardedSgdOptions options;
  options.shards = 4;
  options.parts = 2;  // shard 0 and 1 spread over the first half of the data, 2 and 3 the second
  options.c2 = 30.0;  // a visible decay
  const std::vector<double> w0 = testing::random_weights(shape.dimension(), 0.5, 5);
  const ShardedSgd sgd(data, instances, shape, options, w0);
  const std::size_t D = w0.size(), F = features.size(), S = sgd.shards(), N = instances.size();
  ASSERT_EQ(S, 4u);
  // The constructor's shard assignment: the seeded permutation's instances of each of the P
  // contiguous parts of the data, part after part, cut into S slices.
  std::vector<std::size_t> permutation(N), order;
  std::iota(permutation.begin(), permutation.end(), 0);
  std::mt19937_64 rng(options.seed);
  std::shuffle(permutation.begin(), permutation.end(), rng);
  const std::size_t P = options.parts;
  for (std::size_t p = 0; p < P; ++p)
    for (std::size_t g : permutation)
      if (g >= N * p / P && g < N * (p + 1) / P) order.push_back(g);
  std::vector<std::vector<double>> ws(S, w0);
  std::vector<std::vector<char>> updated(S, std::vector<char>(D, 0));
  std::vector<double> share(S), decay(S, 0.0);
  double a = 0.0;
  for (std::size_t s = 0; s < S; ++s) {
    sgd.train_shard(s, 1, ws[s].data());
    share[s] = static_cast<double>(N * (s + 1) / S - N * s / S) / static_cast<double>(N);
    for (std::size_t j = N * s / S; j < N * (s + 1) / S; ++j) {
      const std::size_t item = instances[order[j]].item;
      for (std::size_t e = data.item_offsets[item]; e < data.item_offsets[item + 1]; ++e) {
        const int32_t attribute = data.attribute_ids[e];
        for (uint32_t f = features.offsets[attribute]; f < features.offsets[attribute + 1]; ++f)
          updated[s][f] = 1;
      }
    }
    for (std::size_t d = F; d < D; ++d) updated[s][d] = 1;
    for (std::size_t d = 0; d < F && decay[s] == 0.0; ++d)
      if (!updated[s][d]) decay[s] = ws[s][d] / w0[d];  // every weight it did not update
    ASSERT_GT(decay[s], 0.0) << "shard " << s << " updated every weight";
    ASSERT_LT(decay[s], 1.0);
    a += share[s] * decay[s];
  }
  std::vector<double> Delta(D), delta(D);
  std::size_t by_none = 0, by_some = 0, by_all = 0;
  for (std::size_t d = 0; d < D; ++d) {
    double sum = 0.0;
    int count = 0;
    for (std::size_t s = 0; s < S; ++s)
      if (updated[s][d]) {
        sum += d < F ? ws[s][d] - w0[d] : share[s] * (ws[s][d] - w0[d]);
        ++count;
      }
    if (d < F) (count == 0 ? by_none : count < static_cast<int>(S) ? by_some : by_all)++;
    Delta[d] = count == 0 ? (a - 1.0) * w0[d] : d < F ? sum / count : sum;
    delta[d] = Delta[d] - (a - 1.0) * w0[d];
  }
  ASSERT_GT(by_none, 0u);
  ASSERT_GT(by_some, 0u);
  ASSERT_GT(by_all, 0u);
  double ww = 0.0, wd = 0.0, dd = 0.0;
  for (std::size_t d = 0; d < D; ++d) {
    ww += w0[d] * w0[d];
    wd += w0[d] * delta[d];
    dd += delta[d] * delta[d];
  }
  const double gamma = sgd.mixing_step(w0.data(), 1.0, a, delta.data(), ww, wd, dd, 1);
  std::vector<double> w = w0;
  fit_sharded_sgd(sgd, 1, options.c2, 2, w, {});
  for (std::size_t d = 0; d < D; ++d)
    ASSERT_NEAR(w[d], w0[d] + gamma * Delta[d], 1e-12 * (1.0 + std::fabs(w[d]))) << d;
}

// The step search stops at the first grid point above the best so far (J is convex): its step
// must reach the minimum over the whole grid gamma = sqrt(2)^k in [1, S], J computed here
// densely on all the instances (one mix per epoch and N < 4,000: the sample is all of them),
// for directions whose minimum falls at the first, a middle and the last grid points, with
// and without decay.
TEST(ShardedSgd, MixingStepIsTheMinimumOverTheGrid) {
  const Problem p;
  ShardedSgdOptions options;
  options.shards = 16;
  options.c2 = 2.0;
  const std::size_t D = p.shape.dimension();
  const ShardedSgd sgd(p.data, p.instances, p.shape, options, std::vector<double>(D, 0.0));
  ASSERT_LT(p.instances.size(), 4000u);
  SoftmaxObjective f(p.data, p.instances, p.shape, 1);
  const auto J = [&](const std::vector<double>& w) {
    std::vector<double> g(D);
    double penalty = 0.0;
    for (double x : w) penalty += x * x;
    return f.evaluate(w.data(), g.data()) + options.c2 * penalty;
  };
  const std::vector<double> w = testing::random_weights(D, 0.3, 7);
  std::vector<double> grad(D);
  f.evaluate(w.data(), grad.data());
  for (std::size_t d = 0; d < D; ++d) grad[d] += 2.0 * options.c2 * w[d];
  std::vector<double> gammas;
  for (double a : {1.0, 0.97}) {
    for (double length : {1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2}) {
      std::vector<double> delta(D), Delta(D);  // descent direction; Delta = (a - 1) w + delta
      double ww = 0.0, wd = 0.0, dd = 0.0;
      for (std::size_t d = 0; d < D; ++d) {
        delta[d] = -length * grad[d] - (a - 1.0) * w[d];
        Delta[d] = (a - 1.0) * w[d] + delta[d];
        ww += w[d] * w[d];
        wd += w[d] * delta[d];
        dd += delta[d] * delta[d];
      }
      const double gamma = sgd.mixing_step(w.data(), 1.0, a, delta.data(), ww, wd, dd, 1);
      double best = INFINITY;
      for (double g = 1.0; g <= 16.0 + 1e-9; g *= 1.41421356237) {
        if (g > 1.0 && 1.0 + g * (a - 1.0) < 0.5) continue;
        std::vector<double> x(D);
        for (std::size_t d = 0; d < D; ++d) x[d] = w[d] + g * Delta[d];
        const double j = J(x);
        best = std::min(best, j);
      }
      std::vector<double> x(D);
      for (std::size_t d = 0; d < D; ++d) x[d] = w[d] + gamma * Delta[d];
      EXPECT_LE(J(x), best + 1e-9 * std::fabs(best)) << "a " << a << " length " << length << " gamma " << gamma;
      gammas.push_back(gamma);
    }
  }
  std::sort(gammas.begin(), gammas.end());
  EXPECT_EQ(gammas.front(), 1.0);
  EXPECT_GT(gammas.back(), 4.0) << "no direction whose minimum lies past the first grid points";
  EXPECT_GT(std::unique(gammas.begin(), gammas.end()) - gammas.begin(), 3);
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

  for (const auto& [shards, mixes] : {std::pair<std::size_t, std::size_t>{1, 1}, {4, 1}, {16, 8}}) {
    ShardedSgdOptions options;
    options.c2 = c2;
    options.shards = shards;
    options.mixes = mixes;
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

// Candidate lists of `instances` over K classes as a function of the global id (first + i):
// the gold class alone for about a third of them, else it and one or two others, each with a
// base offset.
CandidateLists lists_of(std::vector<LocalInstance>& instances, std::size_t first, int32_t K) {
  CandidateLists lists;
  for (std::size_t i = 0; i < instances.size(); ++i) {
    const uint32_t g = static_cast<uint32_t>(first + i);
    const int32_t n = static_cast<int32_t>(g * 2654435761u >> 30) % 3 + 1;
    instances[i].candidates = static_cast<int64_t>(lists.size());
    for (int32_t k = 0; k < n; ++k) {
      lists.classes.push_back((instances[i].gold + k) % K);
      lists.base.push_back(0.25 * static_cast<double>((g + 7 * static_cast<uint32_t>(k)) % 5) - 0.5);
    }
    lists.offsets.push_back(lists.classes.size());
  }
  return lists;
}

// SGD over ranks (threads as ranks) with each rank holding only the instances of the sequences
// it read (ShardedSgd's spread mode: the instances move to the ranks that train their shards)
// gives the weights of one process bit for bit: node instances without lists, and edge
// instances with candidate lists (some the gold class alone) and base offsets; 1 and 2 threads
// per rank.
TEST(ShardedSgd, SpreadOverRanksGivesTheOneProcessWeights) {
  constexpr std::size_t A = 30, L = 3, K = L * L;
  Dataset whole = testing::random_dataset(700, 6, A, L, 31);
  whole = testing::unit_slice(whole, 0, whole.size());
  std::vector<int32_t> pair_class(L * L);
  std::iota(pair_class.begin(), pair_class.end(), 0);
  for (int span = 1; span <= 2; ++span) {
    const auto instances_of = [&](const Dataset& d) {
      return span == 1 ? node_instances(d) : edge_instances(d, pair_class, L);
    };
    std::vector<LocalInstance> all = instances_of(whole);
    const std::size_t classes = span == 1 ? L : K;
    CandidateLists all_lists;
    if (span == 2) all_lists = lists_of(all, 0, static_cast<int32_t>(K));
    const SparseFeatures features =
        instance_features(whole, all, A, classes, span, 1, false);
    SoftmaxModelShape shape{&features, A, classes, 1, nullptr};
    if (span == 2) shape.candidates = &all_lists;
    ShardedSgdOptions options;
    options.shards = 7;
    options.mixes = 3;
    options.epochs = 3;
    options.c2 = 0.5;
    const std::vector<double> w0 = testing::random_weights(shape.dimension(), 0.1, 5);
    std::vector<double> one = w0;
    {
      const ShardedSgd sgd(whole, all, shape, options, w0);
      fit_sharded_sgd(sgd, options.epochs, options.c2, 1, one, {});
    }
    for (int ranks = 2; ranks <= 4; ++ranks)
      for (int threads : {1, 2}) {
        if (threads == 2 && ranks != 3) continue;
        ThreadGroup group(ranks);
        std::vector<std::vector<double>> w(static_cast<std::size_t>(ranks), w0);
        std::vector<std::thread> workers;
        for (int r = 0; r < ranks; ++r)
          workers.emplace_back([&, r] {
            const std::size_t n0 = whole.size() * static_cast<std::size_t>(r) / static_cast<std::size_t>(ranks);
            const std::size_t n1 = whole.size() * static_cast<std::size_t>(r + 1) / static_cast<std::size_t>(ranks);
            const Dataset own = testing::unit_slice(whole, n0, n1);
            std::vector<LocalInstance> instances = instances_of(own);
            std::size_t first = 0;  // this rank's first global id
            for (std::size_t n = 0; n < n0; ++n)
              first += span == 1 ? whole.sequence_offsets[n + 1] - whole.sequence_offsets[n]
                                 : whole.sequence_offsets[n + 1] - whole.sequence_offsets[n] - 1;
            CandidateLists lists;
            SoftmaxModelShape own_shape = shape;
            if (span == 2) {
              lists = lists_of(instances, first, static_cast<int32_t>(K));
              own_shape.candidates = &lists;
            }
            ThreadCommunicator comm(group, r);
            const ShardedSgd sgd(own, instances, own_shape, options, w0, threads, &comm, true);
            fit_sharded_sgd(sgd, options.epochs, options.c2, threads, w[static_cast<std::size_t>(r)],
                            {}, nullptr, 1, &comm);
          });
        for (std::thread& t : workers) t.join();
        for (int r = 0; r < ranks; ++r)
          EXPECT_EQ(w[static_cast<std::size_t>(r)], one)  // bit-identical
              << "span " << span << ", " << ranks << " ranks x " << threads << " threads, rank " << r;
      }
  }
}

// Spread over ranks, the shards line up with the parts the ranks read (shards spread within
// P contiguous parts of the data, rank q training shards [S q / R, S (q+1) / R)): where R
// divides P, a rank receives only the instances of its shards that another rank read (at the
// cuts) and the fixed samples (rate calibration: 1,000; step search: 1,000 at 16 mixes), not
// the half or more of its shards that a random spread of the instances over all the data
// moved. 16 shards, 2-4 ranks, each reading an equal share of the sequences; the weights
// equal one process's for every rank count.
TEST(ShardedSgd, SpreadOverRanksReceivesOnlyTheCutsAndTheSamples) {
  constexpr std::size_t A = 30, L = 3;
  Dataset whole = testing::random_dataset(6000, 6, A, L, 17);
  whole = testing::unit_slice(whole, 0, whole.size());
  const std::vector<LocalInstance> all = node_instances(whole);
  const std::size_t N = all.size();
  ASSERT_GT(N, 15000u);
  const SparseFeatures features = instance_features(whole, all, A, L, 1, 1, false);
  const SoftmaxModelShape shape{&features, A, L, 1, nullptr};
  ShardedSgdOptions options;
  options.shards = 16;
  options.mixes = 16;
  options.epochs = 1;
  options.parts = 2;  // (aligned with 1 and 2 ranks)
  const std::vector<double> w0 = testing::random_weights(shape.dimension(), 0.1, 5);
  std::vector<double> one = w0;
  {
    const ShardedSgd sgd(whole, all, shape, options, w0);
    fit_sharded_sgd(sgd, options.epochs, options.c2, 1, one, {});
  }
  for (int ranks = 2; ranks <= 4; ++ranks) {
    const std::size_t R = static_cast<std::size_t>(ranks);
    ThreadGroup group(ranks);
    std::vector<std::vector<double>> w(R, w0);
    std::vector<std::size_t> received(R), bound(R);
    std::vector<std::thread> workers;
    for (std::size_t r = 0; r < R; ++r)
      workers.emplace_back([&, r] {
        const std::size_t n0 = whole.size() * r / R, n1 = whole.size() * (r + 1) / R;
        const Dataset own = testing::unit_slice(whole, n0, n1);
        const std::vector<LocalInstance> instances = node_instances(own);
        const std::size_t g0 = whole.sequence_offsets[n0], g1 = whole.sequence_offsets[n1];
        ThreadCommunicator comm(group, static_cast<int>(r));
        const ShardedSgd sgd(own, instances, shape, options, w0, 1, &comm, true);
        // its shards' instances that another rank read, and the samples
        const std::size_t lo = N * (16 * r / R) / 16, hi = N * (16 * (r + 1) / R) / 16;
        bound[r] = (g0 > lo ? g0 - lo : 0) + (hi > g1 ? hi - g1 : 0) + 2000;
        received[r] = sgd.received();
        fit_sharded_sgd(sgd, options.epochs, options.c2, 1, w[r], {}, nullptr, 1, &comm);
      });
    for (std::thread& t : workers) t.join();
    for (std::size_t r = 0; r < R; ++r) {
      if (options.parts % R == 0) {
        EXPECT_LE(received[r], bound[r]) << ranks << " ranks, rank " << r;
        EXPECT_LT(received[r], N / 5) << ranks << " ranks, rank " << r;
      }
      EXPECT_EQ(w[r], one) << ranks << " ranks, rank " << r;  // bit-identical
    }
  }
}

// Spread over ranks, the held items are cut to those of the instances that still read them
// (ShardedSgd::keep_read_items): here a third of the edges have lists of 70 classes, too long for
// the listed-feature cache (64 at most), so their items must stay and every other instance's
// go. The weights equal one process's bit for bit on 2 and 3 ranks.
TEST(ShardedSgd, SpreadOverRanksKeepsTheItemsOfUncachedInstances) {
  constexpr std::size_t A = 30, L = 9, K = L * L;
  Dataset whole = testing::random_dataset(200, 6, A, L, 43);
  whole = testing::unit_slice(whole, 0, whole.size());
  std::vector<int32_t> pair_class(K);
  std::iota(pair_class.begin(), pair_class.end(), 0);
  // gold and 69 more classes for global ids divisible by 3, gold and one more for the others
  const auto long_lists = [&](std::vector<LocalInstance>& instances, std::size_t first) {
    CandidateLists lists;
    for (std::size_t i = 0; i < instances.size(); ++i) {
      const int32_t n = (first + i) % 3 == 0 ? 70 : 2;
      instances[i].candidates = static_cast<int64_t>(lists.size());
      for (int32_t k = 0; k < n; ++k) {
        lists.classes.push_back((instances[i].gold + k) % static_cast<int32_t>(K));
        lists.base.push_back(0.1 * static_cast<double>(k % 4));
      }
      lists.offsets.push_back(lists.classes.size());
    }
    return lists;
  };
  std::vector<LocalInstance> all = edge_instances(whole, pair_class, L);
  CandidateLists all_lists = long_lists(all, 0);
  const SparseFeatures features = instance_features(whole, all, A, K, 2, 1, false);
  SoftmaxModelShape shape{&features, A, K, 1, nullptr};
  shape.candidates = &all_lists;
  ShardedSgdOptions options;
  options.shards = 5;
  options.mixes = 2;
  options.epochs = 2;
  const std::vector<double> w0 = testing::random_weights(shape.dimension(), 0.1, 7);
  std::vector<double> one = w0;
  {
    const ShardedSgd sgd(whole, all, shape, options, w0);
    fit_sharded_sgd(sgd, options.epochs, options.c2, 1, one, {});
  }
  for (int ranks = 2; ranks <= 3; ++ranks) {
    ThreadGroup group(ranks);
    std::vector<std::vector<double>> w(static_cast<std::size_t>(ranks), w0);
    std::vector<std::thread> workers;
    for (int r = 0; r < ranks; ++r)
      workers.emplace_back([&, r] {
        const std::size_t n0 = whole.size() * static_cast<std::size_t>(r) / static_cast<std::size_t>(ranks);
        const std::size_t n1 = whole.size() * static_cast<std::size_t>(r + 1) / static_cast<std::size_t>(ranks);
        const Dataset own = testing::unit_slice(whole, n0, n1);
        std::vector<LocalInstance> instances = edge_instances(own, pair_class, L);
        std::size_t first = 0;  // this rank's first global id
        for (std::size_t n = 0; n < n0; ++n)
          first += whole.sequence_offsets[n + 1] - whole.sequence_offsets[n] - 1;
        CandidateLists lists = long_lists(instances, first);
        SoftmaxModelShape own_shape = shape;
        own_shape.candidates = &lists;
        ThreadCommunicator comm(group, r);
        const ShardedSgd sgd(own, instances, own_shape, options, w0, 1, &comm, true);
        fit_sharded_sgd(sgd, options.epochs, options.c2, 1, w[static_cast<std::size_t>(r)], {},
                        nullptr, 1, &comm);
      });
    for (std::thread& t : workers) t.join();
    for (int r = 0; r < ranks; ++r)
      EXPECT_EQ(w[static_cast<std::size_t>(r)], one) << ranks << " ranks, rank " << r;
  }
}

// The mix keeps delta' in a worker's weight buffer and zeroes only the weights the step search
// reads (step_reads); a weight it reads outside them would hold a weight, not 0. So: for every
// instance of the step search's sample (positions j N / M of the shard permutation, M = 1,000 of
// N = 1,700-2,400) the raw scores (every feature of its attributes and its dense row: what any scoring
// path reads at most) from weights that are NaN outside step_reads equal those from the true
// weights; nodes and edges (attribute ids shifted by A per item), 16 mixes. And the reads are
// a proper subset (the test could fail the other way: instances outside the sample read more).
TEST(ShardedSgd, StepReadsCoverTheStepSearchSample) {
  constexpr std::size_t A = 3000, L = 3, K = L * L;  // rare attributes: some outside the sample
  Dataset data = testing::random_dataset(700, 6, A, L, 41);
  data = testing::unit_slice(data, 0, data.size());
  std::vector<int32_t> pair_class(L * L);
  std::iota(pair_class.begin(), pair_class.end(), 0);
  for (int span = 1; span <= 2; ++span) {
    std::vector<LocalInstance> instances =
        span == 1 ? node_instances(data) : edge_instances(data, pair_class, L);
    const std::size_t classes = span == 1 ? L : K;
    CandidateLists lists;
    if (span == 2) lists = lists_of(instances, 0, static_cast<int32_t>(K));
    const SparseFeatures features = instance_features(data, instances, A, classes, span, 1, false);
    SoftmaxModelShape shape{&features, A, classes, 1, nullptr};
    if (span == 2) shape.candidates = &lists;
    ShardedSgdOptions options;
    options.shards = 5;
    options.mixes = 16;
    const std::size_t D = shape.dimension(), N = instances.size();
    const std::vector<double> w = testing::random_weights(D, 0.5, 9);
    const ShardedSgd sgd(data, instances, shape, options, w);
    const std::size_t M = sgd.step_sample_size();
    ASSERT_LT(M, N);
    std::vector<double> outside(D, std::nan(""));
    std::size_t covered = 0;
    for (const auto& [first, last] : sgd.step_reads()) {
      ASSERT_LE(last, D);
      std::copy(w.begin() + static_cast<std::ptrdiff_t>(first),
                w.begin() + static_cast<std::ptrdiff_t>(last),
                outside.begin() + static_cast<std::ptrdiff_t>(first));
      covered += last - first;
    }
    EXPECT_LT(covered, D) << "span " << span;
    std::vector<std::size_t> order(N);  // the constructor's shard permutation
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(options.seed);
    std::shuffle(order.begin(), order.end(), rng);
    const ItemArrays items = ItemArrays::of(data);
    SoftmaxModelShape raw = shape;
    raw.candidates = nullptr;  // every class: the dense path reads every attribute feature
    std::vector<double> expected(classes), got(classes);
    std::size_t scored = 0;
    for (std::size_t j = 0; j < M; ++j) {
      const LocalInstance& instance = instances[order[j * N / M]];
      if (only_gold(shape, instance)) continue;
      softmax_raw_scores(raw, items, instance, w.data(), 1.0, expected.data(), false);
      softmax_raw_scores(raw, items, instance, outside.data(), 1.0, got.data(), false);
      for (std::size_t c = 0; c < classes; ++c) ASSERT_EQ(got[c], expected[c]) << j << " " << c;
      ++scored;
    }
    EXPECT_GT(scored, M / 3);  // (a third of the edges are gold-only)
  }
}

}  // namespace
}  // namespace septa::crf
