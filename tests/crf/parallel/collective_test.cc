#include "crf/parallel/collective.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "crf/thread_communicator.h"

namespace septa::crf {
namespace {

using test_support::ThreadCommunicator;
using test_support::ThreadGroup;

// A corpus of strings with repeats across and within parts, cut into `ranks` consecutive parts.
std::vector<std::vector<std::string>> parts_of(std::size_t n, int ranks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> corpus;
  for (std::size_t i = 0; i < n; ++i)
    corpus.push_back(std::string(1 + rng() % 12, static_cast<char>('a' + rng() % 3)) +
                     std::to_string(rng() % (n / 2)));
  std::vector<std::vector<std::string>> parts(static_cast<std::size_t>(ranks));
  for (std::size_t i = 0; i < n; ++i)
    parts[i * static_cast<std::size_t>(ranks) / n].push_back(corpus[i]);
  return parts;
}

// merge_dictionary with slices on 1-4 ranks: every rank's ids are those of one dictionary
// built over the whole corpus in order; rank 0 alone keeps the strings, the others the count
// and their slice; the slices gathered in rank order restore that dictionary.
TEST(Collective, MergedDictionarySlicesRestoreTheOneProcessDictionary) {
  for (int ranks = 1; ranks <= 4; ++ranks) {
    const auto parts = parts_of(3000, ranks, 7 + ranks);
    Dictionary whole;
    for (const auto& part : parts)
      for (const std::string& s : part) whole.add(s);
    ThreadGroup group(ranks);
    std::vector<Dictionary> merged(static_cast<std::size_t>(ranks));
    std::vector<std::string> slices(static_cast<std::size_t>(ranks));
    std::vector<std::vector<int32_t>> global(static_cast<std::size_t>(ranks));
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r)
      threads.emplace_back([&, r] {
        ThreadCommunicator comm(group, r);
        const auto q = static_cast<std::size_t>(r);
        Dictionary& local = merged[q];
        for (const std::string& s : parts[q]) local.add(s);
        global[q] = merge_dictionary(local, comm, &slices[q]);
      });
    for (std::thread& t : threads) t.join();
    for (int r = 0; r < ranks; ++r) {
      const auto q = static_cast<std::size_t>(r);
      ASSERT_EQ(merged[q].size(), whole.size()) << ranks << " ranks, rank " << r;
      Dictionary local;  // the rank's own first-seen order, as it encoded its part
      for (const std::string& s : parts[q]) local.add(s);
      ASSERT_EQ(global[q].size(), local.size());
      for (std::size_t id = 0; id < local.size(); ++id)
        EXPECT_EQ(global[q][id], whole.find(local.name(static_cast<int32_t>(id))));
      if (r == 0) {
        EXPECT_TRUE(slices[q].empty());
        EXPECT_EQ(merged[q].names(), whole.names());
      } else {
        EXPECT_TRUE(merged[q].names().empty()) << "rank " << r << " keeps only its slice";
      }
    }
    // What finish() does: rank 0 packs its own slice, the slices restore the dictionary.
    Dictionary restored = merged[0];
    const auto [lo, hi] = name_slice(restored.size(), 0, ranks);
    EXPECT_EQ(lo, 0u);
    slices[0] = restored.pack(lo, hi);
    restored.unpack(slices);
    EXPECT_EQ(restored.names(), whole.names()) << ranks << " ranks";
    for (const std::string& s : whole.names()) EXPECT_EQ(restored.find(s), whole.find(s));
  }
}

// union_features_across on 1-4 ranks, K from 5 to 256 (one to four 64-bit words per set): every
// rank gets the classes that any rank has for each attribute, in increasing order (with
// all_classes, all K classes of every attribute that any rank has), by brute force over the
// ranks' (attribute, class) pairs.
TEST(Collective, UnitedFeaturesAreTheClassesAnyRankHas) {
  for (const std::size_t K : {5u, 64u, 70u, 200u, 256u})
    for (int ranks = 1; ranks <= 4; ++ranks)
      for (const bool all_classes : {false, true})
        for (const std::size_t A : {300u, 3u, 0u}) {  // (fewer attributes than chunks or ranks)
          std::mt19937 rng(static_cast<uint32_t>(K * 10 + ranks));
          std::vector<SparseFeatures> local(static_cast<std::size_t>(ranks));
          std::vector<std::vector<char>> any(A, std::vector<char>(K, 0));  // [A][K] brute force
          for (SparseFeatures& f : local) {
            f.A = A;
            f.K = K;
            f.offsets.assign(1, 0);
            for (std::size_t a = 0; a < A; ++a) {
              const std::size_t n = a % 7 == 0 ? 0 : rng() % 4;  // some attributes on no rank
              std::vector<int32_t> classes;
              for (std::size_t i = 0; i < n; ++i) classes.push_back(static_cast<int32_t>(rng() % K));
              std::sort(classes.begin(), classes.end());
              classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
              for (int32_t k : classes) {
                f.classes.push_back(k);
                any[a][static_cast<std::size_t>(k)] = 1;
              }
              f.offsets.push_back(static_cast<uint32_t>(f.classes.size()));
            }
          }
          SparseFeatures expected;
          expected.offsets.assign(1, 0);
          for (std::size_t a = 0; a < A; ++a) {
            const bool seen = std::find(any[a].begin(), any[a].end(), 1) != any[a].end();
            for (std::size_t k = 0; k < K; ++k)
              if (any[a][k] || (all_classes && seen)) expected.classes.push_back(static_cast<int32_t>(k));
            expected.offsets.push_back(static_cast<uint32_t>(expected.classes.size()));
          }
          ThreadGroup group(ranks);
          std::vector<SparseFeatures> united(static_cast<std::size_t>(ranks));
          std::vector<std::thread> threads;
          for (int r = 0; r < ranks; ++r)
            threads.emplace_back([&, r] {
              ThreadCommunicator comm(group, r);
              const auto q = static_cast<std::size_t>(r);
              united[q] = union_features_across(std::move(local[q]), A, K, all_classes, comm);
            });
          for (std::thread& t : threads) t.join();
          for (const SparseFeatures& u : united) {
            EXPECT_EQ(u.A, A);
            EXPECT_EQ(u.K, K);
            EXPECT_EQ(u.offsets, expected.offsets) << K << " classes, " << ranks << " ranks";
            EXPECT_EQ(u.classes, expected.classes) << K << " classes, " << ranks << " ranks";
          }
        }
}

}  // namespace
}  // namespace septa::crf
