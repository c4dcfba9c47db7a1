// Observation-conditioned transitions (CRF++'s "B01:%x[0,0]"): the scorer's per-position
// transition scores, the objective and its gradient, decoding, against brute-force enumeration
// of every labelling computed straight from the features.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>

#include "crf/lattice/nbest.h"
#include "crf/objectives/crf_objective.h"
#include "crf/optim/minimizer.h"
#include "crf/random_data.h"
#include "crf/scoring/linear_chain.h"
#include "crf/thread_communicator.h"

namespace septa::crf {
namespace {

constexpr std::size_t kStateAttributes = 6;
constexpr std::size_t kEdgeAttributes = 4;  // ids kStateAttributes .. +kEdgeAttributes-1

// Random sequences whose items t >= 1 carry 0..2 edge attributes.
Dataset random_edge_dataset(std::size_t N, std::size_t max_T, std::size_t L, unsigned seed) {
  std::mt19937 rng(seed);
  Dataset data;
  for (std::size_t n = 0; n < N; ++n) {
    const std::size_t T = 1 + rng() % max_T;
    for (std::size_t t = 0; t < T; ++t) {
      const std::size_t k = 1 + rng() % 2;
      for (std::size_t e = 0; e < k; ++e)
        data.add_attribute(static_cast<int32_t>(rng() % kStateAttributes),
                           0.5f + static_cast<float>(rng() % 1000) / 1000.0f);
      if (t > 0)
        for (std::size_t e = rng() % 3; e > 0; --e)
          data.add_edge_attribute(static_cast<int32_t>(kStateAttributes + rng() % kEdgeAttributes));
      data.end_item(static_cast<int32_t>(rng() % L));
    }
    data.end_sequence(0.5 + (rng() % 4) * 0.5);
  }
  return data;
}

LinearChainScorer structure_for(const Dataset& data, std::size_t L, bool all_pairs) {
  const std::size_t A = kStateAttributes + kEdgeAttributes;
  SparseFeaturesBuilder states(A, L), edges(A, L * L);
  for (std::size_t n = 0; n < data.size(); ++n) {
    const SequenceView s = data.sequence(n);
    for (std::size_t t = 0; t < s.T; ++t) {
      for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e)
        states.add(s.attribute_ids[e], s.labels[t]);
      if (t > 0)
        for (std::size_t e = s.edge_offsets[t]; e < s.edge_offsets[t + 1]; ++e)
          edges.add(s.edge_ids[e], s.labels[t - 1] * static_cast<int32_t>(L) + s.labels[t]);
    }
  }
  return LinearChainScorer(states.build(1, false), edges.build(1, all_pairs), L);
}

// score(y) from the features, never through a lattice.
double brute_score(const LinearChainScorer& scorer, const SequenceView& s, const double* w,
                   const std::vector<int>& y) {
  const std::size_t L = scorer.labels();
  double score = 0.0;
  for (std::size_t t = 0; t < s.T; ++t) {
    for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
      const int64_t f = scorer.states().find(s.attribute_ids[e], y[t]);
      if (f >= 0) score += w[f] * s.attribute_values[e];
    }
    if (t == 0) continue;
    const std::size_t pair = y[t - 1] * L + y[t];
    score += w[scorer.transition_offset() + pair];
    for (std::size_t e = s.edge_offsets[t]; e < s.edge_offsets[t + 1]; ++e) {
      const int64_t f = scorer.edges().find(s.edge_ids[e], static_cast<int32_t>(pair));
      if (f >= 0) score += w[scorer.edge_offset() + f];
    }
  }
  return score;
}

// Calls visit(y) for every labelling of T items over L labels.
template <class Visit>
void for_all_labellings(std::size_t T, std::size_t L, Visit visit) {
  std::vector<int> y(T, 0);
  while (true) {
    visit(y);
    std::size_t t = 0;
    while (t < T && ++y[t] == static_cast<int>(L)) y[t++] = 0;
    if (t == T) return;
  }
}

double log_sum_exp(const std::vector<double>& v) {
  const double m = *std::max_element(v.begin(), v.end());
  double sum = 0.0;
  for (double x : v) sum += std::exp(x - m);
  return m + std::log(sum);
}

TEST(ConditionedTransitions, LatticeMatchesBruteForceEnumeration) {
  const std::size_t L = 3;
  const Dataset data = random_edge_dataset(25, 4, L, 7);
  for (bool all_pairs : {false, true}) {
    const LinearChainScorer scorer = structure_for(data, L, all_pairs);
    ASSERT_GT(scorer.edges().size(), 0u);
    const std::vector<double> w = testing::random_weights(scorer.feature_count(), 1.5, 11);
    Lattice lattice;
    for (std::size_t n = 0; n < data.size(); ++n) {
      const SequenceView s = data.sequence(n);
      scorer.fill(s, w.data(), lattice);
      const double log_z = lattice.forward_backward();
      std::vector<double> scores;
      std::vector<std::vector<int>> paths;
      for_all_labellings(s.T, L, [&](const std::vector<int>& y) {
        scores.push_back(brute_score(scorer, s, w.data(), y));
        paths.push_back(y);
      });
      const double brute_log_z = log_sum_exp(scores);
      EXPECT_NEAR(log_z, brute_log_z, 1e-9) << n;
      // Node and edge marginals.
      std::vector<double> node(s.T * L, 0.0), edge(s.T * L * L, 0.0);
      for (std::size_t p = 0; p < paths.size(); ++p) {
        const double prob = std::exp(scores[p] - brute_log_z);
        for (std::size_t t = 0; t < s.T; ++t) {
          node[t * L + paths[p][t]] += prob;
          if (t > 0) edge[(t * L + paths[p][t - 1]) * L + paths[p][t]] += prob;
        }
      }
      for (std::size_t t = 0; t < s.T; ++t) {
        for (std::size_t j = 0; j < L; ++j)
          EXPECT_NEAR(lattice.node_marginal(t, j), node[t * L + j], 1e-9);
        if (t == 0) continue;
        std::vector<double> got(L * L, 0.0);
        lattice.add_edge_marginals(t, 1.0, got.data());
        for (std::size_t q = 0; q < L * L; ++q) EXPECT_NEAR(got[q], edge[t * L * L + q], 1e-9);
      }
      // Viterbi and n-best: the best paths of the enumeration, in order.
      std::vector<std::size_t> order(paths.size());
      for (std::size_t p = 0; p < order.size(); ++p) order[p] = p;
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
      std::vector<int> best(s.T);
      EXPECT_NEAR(lattice.viterbi(best.data()), scores[order[0]], 1e-9);
      EXPECT_NEAR(brute_score(scorer, s, w.data(), best), scores[order[0]], 1e-9);
      const std::vector<ScoredPath> top = nbest(lattice, 5);
      ASSERT_EQ(top.size(), std::min<std::size_t>(5, paths.size()));
      for (std::size_t k = 0; k < top.size(); ++k) {
        EXPECT_NEAR(top[k].score, scores[order[k]], 1e-9) << n << " rank " << k;
        EXPECT_NEAR(brute_score(scorer, s, w.data(), top[k].labels), top[k].score, 1e-9);
      }
    }
  }
}

TEST(ConditionedTransitions, ObjectiveMatchesBruteForceAndGradientFiniteDifferences) {
  const std::size_t L = 3;
  const Dataset data = random_edge_dataset(12, 4, L, 3);
  const LinearChainScorer structure = structure_for(data, L, false);
  CrfObjective objective(data, structure, 1);
  const std::vector<double> w = testing::random_weights(objective.dimension(), 1.0, 5);
  std::vector<double> g(w.size());
  const double value = objective.evaluate(w.data(), g.data());
  double brute = 0.0;  // -sum_n c_n [score(y_n) - log Z_n]
  for (std::size_t n = 0; n < data.size(); ++n) {
    const SequenceView s = data.sequence(n);
    std::vector<double> scores;
    for_all_labellings(s.T, L, [&](const std::vector<int>& y) {
      scores.push_back(brute_score(structure, s, w.data(), y));
    });
    const std::vector<int> gold(s.labels, s.labels + s.T);
    brute -= s.weight * (brute_score(structure, s, w.data(), gold) - log_sum_exp(scores));
  }
  EXPECT_NEAR(value, brute, 1e-9 * std::max(1.0, std::fabs(brute)));

  std::vector<double> x = w, scratch(w.size());
  const double h = 1e-5;
  for (std::size_t i = 0; i < w.size(); ++i) {
    x[i] = w[i] + h;
    const double up = objective.evaluate(x.data(), scratch.data());
    x[i] = w[i] - h;
    const double down = objective.evaluate(x.data(), scratch.data());
    x[i] = w[i];
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(g[i], numeric, 1e-6 * std::max(1.0, std::fabs(numeric)))
        << (i >= structure.edge_offset() ? "edge feature " : "feature ") << i;
  }
}

TEST(ConditionedTransitions, OneAndManyThreadsGiveBitIdenticalObjectiveAndGradient) {
  const Dataset data = random_edge_dataset(200, 10, 4, 19);
  const LinearChainScorer structure = structure_for(data, 4, true);
  const std::vector<double> w = testing::random_weights(structure.feature_count(), 1.0, 2);
  CrfObjective one(data, structure, 1);
  std::vector<double> g1(w.size());
  const double f1 = one.evaluate(w.data(), g1.data());
  for (int threads : {2, 5}) {
    CrfObjective many(data, structure, threads);
    std::vector<double> g(w.size());
    EXPECT_EQ(many.evaluate(w.data(), g.data()), f1);
    EXPECT_EQ(g, g1);
  }
}

// Without edge features the scorer keeps one shared transition matrix (the fast path), and a
// scorer with edge features whose edge weights are zero scores exactly like it.
TEST(ConditionedTransitions, ZeroEdgeWeightsScoreLikeThePlainChain) {
  const std::size_t L = 3;
  const Dataset data = random_edge_dataset(20, 5, L, 23);
  const LinearChainScorer conditioned = structure_for(data, L, false);
  const LinearChainScorer plain(conditioned.states(), L);
  std::vector<double> w = testing::random_weights(conditioned.feature_count(), 1.0, 29);
  std::fill(w.begin() + static_cast<std::ptrdiff_t>(conditioned.edge_offset()), w.end(), 0.0);
  Lattice a, b;
  for (std::size_t n = 0; n < data.size(); ++n) {
    conditioned.fill(data.sequence(n), w.data(), a);
    plain.fill(data.sequence(n), w.data(), b);
    EXPECT_NEAR(a.forward_backward(), b.forward_backward(), 1e-10);
  }
}

// Sequences [n0, n1) of `data` with every value 1 and integer weights 1 or 2 (a corpus spread
// over ranks needs integer observed counts).
Dataset unit_counts(const Dataset& data, std::size_t n0, std::size_t n1) {
  Dataset out = testing::unit_slice(data, n0, n1);
  for (std::size_t n = n0; n < n1; ++n) out.weights[n - n0] = 1.0 + static_cast<double>(n % 2);
  return out;
}

// The reduce-scatter over ranks (ranks as threads; each holds the consecutive blocks of its
// part): with edge features beside the states and transitions, the objective on every rank and
// the ranks' feature ranges put together carry the bits of one process over the same 16
// blocks, for 2, 3 and 4 ranks (1 or 2 threads each).
TEST(ConditionedTransitions, RanksGiveTheBitsOfOneProcess) {
  const Dataset raw = random_edge_dataset(240, 10, 4, 31);
  const Dataset data = unit_counts(raw, 0, raw.size());
  ASSERT_TRUE(data.has_edges());
  const std::size_t B = CrfObjective::kBlocks;
  const std::vector<std::size_t> blocks = partition_by_items(data, B);
  const LinearChainScorer structure = structure_for(data, 4, false);
  ASSERT_GT(structure.feature_count(), structure.edge_offset());
  const std::vector<double> w = testing::random_weights(structure.feature_count(), 1.0, 5);
  CrfObjective one(data, structure, 1);  // kBlocks blocks by items: `blocks`
  std::vector<double> g1(w.size());
  const double f1 = one.evaluate(w.data(), g1.data());
  for (int R : {2, 3, 4}) {
    test_support::ThreadGroup group(R);
    std::vector<double> f(static_cast<std::size_t>(R)), g(w.size(), 7.0);
    std::vector<std::size_t> covered(static_cast<std::size_t>(R), 0);
    std::vector<std::thread> ranks;
    for (int r = 0; r < R; ++r)
      ranks.emplace_back([&, r] {
        test_support::ThreadCommunicator comm(group, r);
        const std::size_t first = B * static_cast<std::size_t>(r) / static_cast<std::size_t>(R);
        const std::size_t end = B * static_cast<std::size_t>(r + 1) / static_cast<std::size_t>(R);
        const Dataset part = unit_counts(raw, blocks[first], blocks[end]);
        BlockLayout layout;
        layout.comm = &comm;
        layout.first = first;
        layout.total = B;
        for (std::size_t b = first; b <= end; ++b) layout.bounds.push_back(blocks[b] - blocks[first]);
        const LinearChainScorer mine = structure_for(data, 4, false);
        CrfObjective objective(part, mine, 1 + r % 2, &layout);
        std::vector<double> range(objective.owned_end() - objective.owned_begin());
        f[static_cast<std::size_t>(r)] = objective.evaluate_owned(w.data(), range.data());
        std::copy(range.begin(), range.end(),
                  g.begin() + static_cast<std::ptrdiff_t>(objective.owned_begin()));
        covered[static_cast<std::size_t>(r)] = range.size();
      });
    for (std::thread& rank : ranks) rank.join();
    std::size_t total = 0;
    for (int r = 0; r < R; ++r) {
      EXPECT_EQ(std::memcmp(&f[static_cast<std::size_t>(r)], &f1, sizeof f1), 0) << R << " ranks, rank " << r;
      total += covered[static_cast<std::size_t>(r)];
    }
    EXPECT_EQ(total, w.size()) << R;
    EXPECT_EQ(std::memcmp(g.data(), g1.data(), sizeof(double) * w.size()), 0) << R << " ranks";
  }
}

}  // namespace
}  // namespace septa::crf
