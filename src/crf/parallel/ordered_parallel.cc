#include "crf/parallel/ordered_parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace septa::crf {

void for_blocks_ordered(std::size_t B, int threads,
                        const std::function<void(std::size_t, std::size_t)>& work,
                        const std::function<void(std::size_t, std::size_t)>& commit) {
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, B));
  if (workers == 1) {
    for (std::size_t b = 0; b < B; ++b) {
      work(b, 0);
      commit(b, 0);
    }
    return;
  }
  std::mutex mutex;
  std::condition_variable turn;
  std::size_t next_commit = 0;
  bool failed = false;
  std::exception_ptr error;
  auto run = [&](std::size_t w) {
    try {
      for (std::size_t b = w; b < B; b += workers) {
        work(b, w);
        std::unique_lock<std::mutex> lock(mutex);
        turn.wait(lock, [&] { return next_commit == b || failed; });
        if (failed) return;
        commit(b, w);
        ++next_commit;
        turn.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
      failed = true;
      turn.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(run, w);
  run(0);
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& task) {
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, n));
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::exception_ptr error;
  auto run = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        task(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        next = n;
      }
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(run);
  run();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace septa::crf
