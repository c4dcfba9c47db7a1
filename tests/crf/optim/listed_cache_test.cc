// The listed instances' cached features give the scores, gradients and SGD weights of the
// uncached path bit for bit.
#include "crf/optim/listed_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "crf/algorithms/local_training.h"
#include "crf/algorithms/pair_ties.h"
#include "crf/optim/only_gold.h"
#include "crf/optim/sgd.h"
#include "crf/random_data.h"
#include "crf/optim/sgd_cache_equality.h"

namespace septa::crf {
namespace {

constexpr std::size_t kA = 6, kL = 6;

// Edge instances over L^2 pair classes (36 by default) and 6 attributes (so that many
// attributes carry more than 16 n classes: both the scan and the search of listed_visits run),
// with candidate lists of 1-5 classes (the gold one first or last; a third of them the gold
// class alone) and base offsets.
struct Problem {
  Dataset data;
  std::vector<LocalInstance> instances;
  CandidateLists lists;
  SparseFeatures features;
  SoftmaxModelShape shape;
  explicit Problem(bool unit, std::size_t L = kL) {
    const std::size_t K = L * L;
    data = testing::unit_slice(testing::random_dataset(400, 6, kA, L, 41), 0, 400);
    data.unit_values = unit;  // the stored values are all 1 either way
    std::vector<int32_t> pair_class(K);
    std::iota(pair_class.begin(), pair_class.end(), 0);
    instances = edge_instances(data, pair_class, L);
    std::mt19937 rng(3);
    for (LocalInstance& instance : instances) {
      const int32_t n = rng() % 3 == 0 ? 1 : 2 + static_cast<int32_t>(rng() % 4);
      instance.candidates = static_cast<int64_t>(lists.size());
      const bool gold_last = rng() % 2 == 1;
      for (int32_t k = 0; k < n; ++k) {
        const int32_t shift = gold_last ? n - 1 - k : k;
        lists.classes.push_back((instance.gold + 7 * shift) % static_cast<int32_t>(K));
        lists.base.push_back(0.125 * static_cast<double>(rng() % 9) - 0.5);
      }
      lists.offsets.push_back(lists.classes.size());
    }
    features = instance_features(data, instances, kA, K, 2, 1, false);
    shape = SoftmaxModelShape{&features, kA, K, 1, nullptr};
    shape.candidates = &lists;
  }
};

// With 36, 144 and 289 pair classes: the cache is built from the attributes' class bit sets
// (one or three 64-bit words) or, past 256 classes, from listed_visits.
void expect_cache_equals_listed_path(std::size_t L) {
  SCOPED_TRACE(L);
  const std::size_t K = L * L;
  const Problem p(true, L);
  const ListedFeatureCache cache(p.data, p.instances, p.shape, 3);
  const std::vector<double> w = testing::random_weights(p.shape.dimension(), 1.0, 8);
  const std::vector<double> g = testing::random_weights(K, 1.0, 9);  // class gradient [K]
  const ItemArrays items = ItemArrays::of(p.data);
  std::size_t cached = 0, searched = 0;
  std::vector<FeatureVisit> visits;
  for (std::size_t i = 0; i < p.instances.size(); ++i) {
    const LocalInstance& instance = p.instances[i];
    if (only_gold(p.shape, instance)) {
      EXPECT_FALSE(cache.has(i));
      continue;
    }
    ASSERT_TRUE(cache.has(i)) << i;
    ++cached;
    std::vector<double> expected(K, 0.0), got(K, 0.0);
    softmax_listed_scores(p.shape, items, instance, w.data(), 0.7, expected.data(), visits);
    ASSERT_EQ(cache.size(i), visits.size()) << i;
    const ListedEntry* entries = cache.begin(i);
    const int32_t* cls = &p.lists.classes[p.lists.offsets[instance.candidates]];
    for (std::size_t e = 0; e < visits.size(); ++e) {
      EXPECT_EQ(entries[e].f(), visits[e].f);
      EXPECT_EQ(cls[entries[e].slot()], p.features.classes[visits[e].f]);
    }
    cached_listed_scores(p.shape, instance, entries, cache.size(i), w.data(), 0.7, got.data());
    for (std::size_t c = p.lists.offsets[instance.candidates];
         c < p.lists.offsets[instance.candidates + 1]; ++c)
      EXPECT_EQ(got[p.lists.classes[c]], expected[p.lists.classes[c]]) << i;  // bit for bit
    std::vector<double> grad_expected(p.shape.dimension(), 0.0), grad_got(p.shape.dimension(), 0.0);
    std::vector<double> class_gradient(K, 0.0);  // 0 outside the list
    for (std::size_t c = p.lists.offsets[instance.candidates];
         c < p.lists.offsets[instance.candidates + 1]; ++c)
      class_gradient[p.lists.classes[c]] = g[p.lists.classes[c]];
    add_listed_gradient(p.shape, instance, visits, class_gradient.data(), grad_expected.data());
    add_cached_gradient(p.shape, instance, entries, cache.size(i), class_gradient.data(),
                        grad_got.data());
    EXPECT_EQ(grad_got, grad_expected) << i;
    const std::size_t n = p.lists.offsets[instance.candidates + 1] - p.lists.offsets[instance.candidates];
    for (int32_t k = 0; k < instance.span; ++k)
      for (std::size_t e = p.data.item_offsets[instance.item + k];
           e < p.data.item_offsets[instance.item + k + 1]; ++e) {
        const int32_t a = p.data.attribute_ids[e] + k * static_cast<int32_t>(kA);
        if (p.features.offsets[a + 1] - p.features.offsets[a] > 16 * n) ++searched;
      }
  }
  EXPECT_GT(cached, 100u);
  EXPECT_GT(searched, 100u);  // long ranges searched class by class, not scanned
  EXPECT_GT(cache.entries(), 0u);
}

TEST(ListedFeatureCache, ScoresAndGradientsEqualTheListedPath) {
  for (const std::size_t L : {kL, std::size_t{12}, std::size_t{17}})
    expect_cache_equals_listed_path(L);
  // Values other than 1: nothing cached.
  const Problem q(false);
  const ListedFeatureCache none(q.data, q.instances, q.shape, 1);
  EXPECT_EQ(none.entries(), 0u);
  EXPECT_FALSE(none.has(0));
}

// The sharded SGD over the cached features (unit values) and over the looked-up ones (the same
// values stored, not flagged as unit) gives the same weights bit for bit, on 1 and 3 threads.
TEST(ListedFeatureCache, ShardedSgdGivesTheWeightsOfTheListedPath) {
  const Problem unit(true), plain(false);
  testing::expect_cached_sgd_equals_looked_up(unit, plain);
}


// Tied attributes (SoftmaxModelShape::tied): after the entries of the instance's own features
// (its first `stepped`, those of the listed path), each tied attribute of its items adds its
// partner's feature of every listed class, as score-only entries; from the class bit sets
// (36 classes) and from listed_visits (289).
TEST(ListedFeatureCache, TiedAttributesAddTheirPartnersFeaturesAfterTheOthers) {
  for (std::size_t L : {6, 17}) {
    SCOPED_TRACE(L);
    Problem p(true, L);
    std::vector<int32_t> tied(2 * kA, -1);
    tied[kA + 1] = 0;  // attribute 1 at t+1 scores attribute 0's features (at t)
    tied[kA + 4] = 2;
    tied[kA + 5] = 2;
    const SparseFeatures reduced = without_tied(p.features, tied, 2);
    SoftmaxModelShape shape = p.shape;
    shape.features = &reduced;
    const ListedFeatureCache untied(p.data, p.instances, shape, 3);
    shape.tied = &tied;
    const ListedFeatureCache cache(p.data, p.instances, shape, 3);
    std::size_t copies = 0;
    for (std::size_t i = 0; i < p.instances.size(); ++i) {
      const LocalInstance& instance = p.instances[i];
      ASSERT_EQ(cache.has(i), untied.has(i));
      if (!cache.has(i)) continue;
      ASSERT_EQ(cache.stepped(i), untied.size(i));
      for (std::size_t e = 0; e < untied.size(i); ++e)
        ASSERT_EQ(cache.begin(i)[e].packed, untied.begin(i)[e].packed);
      const std::size_t at = p.lists.offsets[instance.candidates];
      const std::size_t n = p.lists.offsets[instance.candidates + 1] - at;
      std::vector<uint32_t> expected, got;  // (f, slot) packed
      for (int32_t k = 0; k < instance.span; ++k)
        for (std::size_t e = p.data.item_offsets[instance.item + k];
             e < p.data.item_offsets[instance.item + k + 1]; ++e) {
          const int32_t partner = tied[p.data.attribute_ids[e] + k * kA];
          if (partner < 0) continue;
          for (std::size_t slot = 0; slot < n; ++slot) {
            const int64_t f = reduced.find(partner, p.lists.classes[at + slot]);
            if (f >= 0) expected.push_back(static_cast<uint32_t>(f) << 8 | static_cast<uint32_t>(slot));
          }
        }
      for (std::size_t e = cache.stepped(i); e < cache.size(i); ++e)
        got.push_back(cache.begin(i)[e].packed);
      std::sort(expected.begin(), expected.end());
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, expected) << i;
      copies += got.size();
    }
    EXPECT_GT(copies, 100u);
  }
}

}  // namespace
}  // namespace septa::crf
