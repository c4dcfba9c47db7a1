#include "crf/parallel/instance_exchange.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "crf/algorithms/local_training.h"
#include "crf/random_data.h"
#include "crf/thread_communicator.h"

namespace septa::crf {
namespace {

using test_support::ThreadCommunicator;
using test_support::ThreadGroup;

// Candidate lists for `instances`: 1-3 classes (some lists the gold class alone), with base
// offsets, a function of the global id only.
CandidateLists lists_for(std::vector<LocalInstance>& instances, uint64_t first, bool with_base) {
  CandidateLists lists;
  for (std::size_t i = 0; i < instances.size(); ++i) {
    std::mt19937 rng(static_cast<uint32_t>(first + i) * 7919u + 3u);
    const std::size_t n = 1 + rng() % 3;
    instances[i].candidates = static_cast<int64_t>(lists.size());
    for (std::size_t k = 0; k < n; ++k) {
      lists.classes.push_back(k == 0 ? instances[i].gold : static_cast<int32_t>(rng() % 9));
      if (with_base) lists.base.push_back(static_cast<double>(rng() % 1000) / 7.0);
    }
    lists.offsets.push_back(lists.classes.size());
  }
  return lists;
}

uint64_t dest_of(uint64_t global, int ranks) {
  std::mt19937_64 rng(global * 0x9E3779B97F4A7C15ULL + 5);
  return rng() & ((uint64_t{1} << ranks) - 1);  // some instances go nowhere, some everywhere
}

// Every rank holds the instances of some sequences (consecutive parts of one corpus; with
// `empty_last` the last rank none) and sends each to the ranks of a random mask: each rank
// receives exactly the instances whose mask names it, with their items' attribute ids, gold
// class, weight, span and candidate lists (the base offsets of a list too when the sender has
// none of its own).
TEST(InstanceExchange, EveryRankGetsExactlyItsInstancesWithTheirItemsAndLists) {
  const Dataset whole = testing::random_dataset(90, 7, 40, 4, 21);
  for (int ranks = 1; ranks <= 4; ++ranks)
    for (int span = 1; span <= 2; ++span)
      for (bool with_lists : {false, true})
        for (bool empty_last : {false, true}) {
        if (empty_last && ranks == 1) continue;
        const std::size_t parts_n = static_cast<std::size_t>(ranks) - (empty_last ? 1 : 0);
        // The instances of one process: global ids, each with its item ids.
        std::vector<int32_t> pair_class(16);
        for (int32_t k = 0; k < 16; ++k) pair_class[static_cast<std::size_t>(k)] = k % 9;
        const std::vector<LocalInstance> all =
            span == 1 ? node_instances(whole) : edge_instances(whole, pair_class, 4);
        ThreadGroup group(ranks);
        std::vector<HeldInstances> held(static_cast<std::size_t>(ranks));
        std::vector<uint64_t> firsts(static_cast<std::size_t>(ranks) + 1, 0);
        std::vector<Dataset> parts;
        std::vector<std::vector<LocalInstance>> own(static_cast<std::size_t>(ranks));
        for (int r = 0; r < ranks; ++r) {
          const std::size_t q = std::min(static_cast<std::size_t>(r), parts_n);
          const std::size_t n0 = whole.size() * q / parts_n;
          const std::size_t n1 = whole.size() * std::min(q + 1, parts_n) / parts_n;
          parts.push_back(testing::unit_slice(whole, n0, n1));
          own[static_cast<std::size_t>(r)] =
              span == 1 ? node_instances(parts.back()) : edge_instances(parts.back(), pair_class, 4);
          firsts[static_cast<std::size_t>(r) + 1] = firsts[static_cast<std::size_t>(r)] + own[static_cast<std::size_t>(r)].size();
        }
        ASSERT_EQ(firsts.back(), all.size());
        std::vector<CandidateLists> lists(static_cast<std::size_t>(ranks));
        std::vector<std::thread> threads;
        for (int r = 0; r < ranks; ++r)
          threads.emplace_back([&, r] {
            const std::size_t q = static_cast<std::size_t>(r);
            if (with_lists) lists[q] = lists_for(own[q], firsts[q], span == 2);
            std::vector<uint64_t> dest;
            for (std::size_t i = 0; i < own[q].size(); ++i) dest.push_back(dest_of(firsts[q] + i, ranks));
            ThreadCommunicator comm(group, r);
            held[q] = exchange_instances(parts[q], own[q], with_lists ? &lists[q] : nullptr,
                                         firsts[q], dest, comm);
          });
        for (std::thread& t : threads) t.join();
        // The expected lists, from the one-process instances.
        std::vector<LocalInstance> all_listed = all;
        const CandidateLists whole_lists = lists_for(all_listed, 0, span == 2);
        for (int r = 0; r < ranks; ++r) {
          const HeldInstances& h = held[static_cast<std::size_t>(r)];
          const std::string where = std::to_string(ranks) + " ranks, rank " + std::to_string(r) +
                                    ", span " + std::to_string(span) +
                                    (with_lists ? ", lists" : "") +
                                    (empty_last ? ", last rank empty" : "");
          ASSERT_EQ(h.instances.size(), h.global.size()) << where;
          std::map<uint64_t, std::size_t> got;
          for (std::size_t i = 0; i < h.global.size(); ++i)
            EXPECT_TRUE(got.emplace(h.global[i], i).second) << where << ": instance twice";
          for (uint64_t g = 0; g < all.size(); ++g) {
            const bool wanted = (dest_of(g, ranks) >> r) & 1;
            ASSERT_EQ(got.count(g), wanted ? 1u : 0u) << where << ", instance " << g;
            if (!wanted) continue;
            const LocalInstance& a = all[g];
            const LocalInstance& b = h.instances[got[g]];
            EXPECT_EQ(b.span, a.span);
            EXPECT_EQ(b.gold, a.gold);
            EXPECT_EQ(b.weight, a.weight);
            EXPECT_EQ(b.context, a.context);
            for (int32_t k = 0; k < a.span; ++k) {
              const std::vector<int32_t> expected(
                  whole.attribute_ids.begin() + static_cast<std::ptrdiff_t>(whole.item_offsets[a.item + k]),
                  whole.attribute_ids.begin() + static_cast<std::ptrdiff_t>(whole.item_offsets[a.item + k + 1]));
              const std::vector<int32_t> seen(
                  h.data.attribute_ids.begin() + static_cast<std::ptrdiff_t>(h.data.item_offsets[b.item + k]),
                  h.data.attribute_ids.begin() + static_cast<std::ptrdiff_t>(h.data.item_offsets[b.item + k + 1]));
              EXPECT_EQ(seen, expected) << where << ", instance " << g << ", item " << k;
            }
            if (!with_lists) {
              EXPECT_EQ(b.candidates, -1);
              continue;
            }
            ASSERT_GE(b.candidates, 0);
            const auto c = static_cast<std::size_t>(all_listed[g].candidates);
            const auto d = static_cast<std::size_t>(b.candidates);
            const std::vector<int32_t> classes(
                whole_lists.classes.begin() + static_cast<std::ptrdiff_t>(whole_lists.offsets[c]),
                whole_lists.classes.begin() + static_cast<std::ptrdiff_t>(whole_lists.offsets[c + 1]));
            const std::vector<int32_t> held_classes(
                h.candidates.classes.begin() + static_cast<std::ptrdiff_t>(h.candidates.offsets[d]),
                h.candidates.classes.begin() + static_cast<std::ptrdiff_t>(h.candidates.offsets[d + 1]));
            EXPECT_EQ(held_classes, classes) << where << ", instance " << g;
            if (span == 2) {
              for (std::size_t k = 0; k < classes.size(); ++k) {
                EXPECT_EQ(h.candidates.base[h.candidates.offsets[d] + k],
                          whole_lists.base[whole_lists.offsets[c] + k]);
              }
            }
          }
        }
      }
}

}  // namespace
}  // namespace septa::crf
