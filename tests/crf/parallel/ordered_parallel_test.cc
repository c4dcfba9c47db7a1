#include "crf/parallel/ordered_parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

namespace septa::crf {
namespace {

// The kept workers serve one call after another: every index runs exactly once per call, and
// an ordered commit sees the blocks in order, for thread counts that grow and shrink.
TEST(OrderedParallel, RepeatedCallsRunEveryIndexOnceAndCommitInOrder) {
  for (int round = 0; round < 50; ++round) {
    const int threads = 1 + round % 9;
    std::vector<std::atomic<int>> hits(97);
    parallel_for(hits.size(), threads, [&](std::size_t i) { ++hits[i]; });
    for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
    std::vector<std::size_t> committed, worker_of(40, 99);
    for_blocks_ordered(
        40, threads, [&](std::size_t b, std::size_t w) { worker_of[b] = w; },
        [&](std::size_t b, std::size_t w) {
          EXPECT_EQ(worker_of[b], w);
          committed.push_back(b);
        });
    std::vector<std::size_t> expected(40);
    std::iota(expected.begin(), expected.end(), 0);
    ASSERT_EQ(committed, expected);
    // worker w takes blocks w, w + W, ...
    const std::size_t W = static_cast<std::size_t>(std::min(threads, 40));
    for (std::size_t b = 0; b < 40; ++b) EXPECT_EQ(worker_of[b], b % W);
  }
}

// parallel_for_workers runs every index once, names workers in [0, min(threads, n)), runs
// worker 0's tasks on the calling thread and never two tasks of one worker at once (the
// sharded SGD gives each worker one weight buffer).
TEST(OrderedParallel, WorkersRunEveryIndexOnceOneTaskAtATime) {
  for (int round = 0; round < 50; ++round) {
    const int threads = 1 + round % 9;
    const std::size_t n = 1 + static_cast<std::size_t>(round) % 23;
    const std::size_t W = std::min<std::size_t>(static_cast<std::size_t>(threads), n);
    std::vector<std::atomic<int>> hits(n), busy(W);
    std::atomic<int> overlaps{0}, bad_worker{0}, foreign_zero{0};
    const std::thread::id caller = std::this_thread::get_id();
    parallel_for_workers(n, threads, [&](std::size_t i, std::size_t w) {
      ++hits[i];
      if (w >= W) {
        ++bad_worker;
        return;
      }
      if (w == 0 && std::this_thread::get_id() != caller) ++foreign_zero;
      if (busy[w].fetch_add(1) != 0) ++overlaps;
      std::this_thread::yield();
      busy[w].fetch_sub(1);
    });
    for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
    EXPECT_EQ(bad_worker.load(), 0);
    EXPECT_EQ(overlaps.load(), 0);
    EXPECT_EQ(foreign_zero.load(), 0);
  }
  EXPECT_THROW(parallel_for_workers(10, 4,
                                    [](std::size_t i, std::size_t) {
                                      if (i == 3) throw std::runtime_error("three");
                                    }),
               std::runtime_error);
}

// parallel_for_owned runs every index once, each thread its own block's tasks first, in
// increasing order.
TEST(OrderedParallel, OwnedRunsEveryIndexOnceOwnBlocksFirst) {
  for (int round = 0; round < 50; ++round) {
    const int threads = 1 + round % 9;
    const std::size_t n = 1 + static_cast<std::size_t>(round) % 70;
    std::vector<std::atomic<int>> hits(n);
    std::mutex mutex;
    std::vector<std::size_t> caller_tasks;
    const std::thread::id caller = std::this_thread::get_id();
    const std::size_t W = std::min<std::size_t>(static_cast<std::size_t>(threads), n);
    // At two workers the caller holds its first task until the other thread has taken one:
    // that one is then the first of the other's block, n / 2.
    std::atomic<std::size_t> other_first{n};
    parallel_for_owned(n, threads, [&](std::size_t i) {
      ++hits[i];
      if (std::this_thread::get_id() == caller) {
        if (W == 2 && i == 0)
          while (other_first.load() == n) std::this_thread::yield();
        std::lock_guard<std::mutex> lock(mutex);
        caller_tasks.push_back(i);
      } else {
        std::size_t none = n;
        other_first.compare_exchange_strong(none, i);
      }
      std::this_thread::yield();
    });
    if (W == 2) {
      EXPECT_EQ(other_first.load(), n / 2);
    }
    for (const auto& h : hits) ASSERT_EQ(h.load(), 1);
    // the caller's tasks of its own block [0, n / W) come first, in increasing order (a
    // helper done with its own block may take some of them, or all when the caller starts late)
    for (std::size_t k = 1; k < caller_tasks.size() && caller_tasks[k] < n / W; ++k)
      EXPECT_GT(caller_tasks[k], caller_tasks[k - 1]);
  }
  EXPECT_THROW(parallel_for_owned(10, 4,
                                  [](std::size_t i) {
                                    if (i == 3) throw std::runtime_error("three");
                                  }),
               std::runtime_error);
}

// A call from inside a call, and two calls from two threads at once, all complete (the busy
// pool is never waited for), and errors reach the caller.
TEST(OrderedParallel, NestedAndConcurrentCallsCompleteAndErrorsPropagate) {
  std::atomic<int> inner{0};
  parallel_for(8, 4, [&](std::size_t) { parallel_for(5, 3, [&](std::size_t) { ++inner; }); });
  EXPECT_EQ(inner.load(), 40);
  std::atomic<int> a{0}, b{0};
  std::thread other([&] {
    for (int k = 0; k < 20; ++k) parallel_for(16, 4, [&](std::size_t) { ++a; });
  });
  for (int k = 0; k < 20; ++k) for_blocks_ordered(16, 4, [&](std::size_t, std::size_t) { ++b; },
                                                  [](std::size_t, std::size_t) {});
  other.join();
  EXPECT_EQ(a.load(), 320);
  EXPECT_EQ(b.load(), 320);
  EXPECT_THROW(parallel_for(10, 4,
                            [](std::size_t i) {
                              if (i == 7) throw std::runtime_error("seven");
                            }),
               std::runtime_error);
  EXPECT_THROW(for_blocks_ordered(
                   10, 3, [](std::size_t b, std::size_t) {
                     if (b == 4) throw std::runtime_error("four");
                   },
                   [](std::size_t, std::size_t) {}),
               std::runtime_error);
  std::atomic<int> after{0};  // the pool still works after the errors
  parallel_for(10, 4, [&](std::size_t) { ++after; });
  EXPECT_EQ(after.load(), 10);
}

}  // namespace
}  // namespace septa::crf
