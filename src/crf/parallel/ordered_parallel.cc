#include "crf/parallel/ordered_parallel.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace septa::crf {
namespace {

// Set on pool threads, and on a caller while its job runs: a nested call spawns threads.
thread_local bool in_pool_job = false;

/*
 * Worker threads kept for the process, so that a parallel stage costs a wake-up, not a thread
 * start: the sharded SGD runs four parallel stages per round, about a hundred rounds per factor,
 * and 15 thread starts and joins per stage cost about 2 ms a round at 16 threads (measured as
 * wall above the critical path; docs/crf.md). One job at a time: slot 0 runs on the caller and
 * slots 1..W-1 each on its own pool thread, exactly as W spawned threads would run them. A call
 * that finds the pool taken (a concurrent job, e.g. the two factors' feature builds, or a call
 * from inside a job) or that runs in a forked child spawns its threads as before, so no job ever
 * waits for a pool thread that another job holds.
 */
class SlotPool {
 public:
  // Runs slot(i) for i in [0, W), slot 0 on the caller; false (nothing run) when the pool is
  // taken. `slot` must not throw.
  bool run(std::size_t W, const std::function<void(std::size_t)>& slot) {
    if (in_pool_job || getpid() != pid_) return false;
    std::unique_lock<std::mutex> job(busy_, std::try_to_lock);
    if (!job.owns_lock()) return false;
    while (threads_.size() + 1 < W) {
      const std::size_t id = threads_.size() + 1;
      threads_.emplace_back([this, id] { serve(id); });
    }
    spin_ = W <= cores_;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      slot_ = &slot;
      slots_ = W;
      pending_.store(W - 1);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    in_pool_job = true;
    slot(0);
    in_pool_job = false;
    // The caller is done: it waits for the others (spinning briefly when each has a core).
    if (spin_) spin_until([&] { return pending_.load() == 0; });
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_.load() == 0; });
    slot_ = nullptr;
    return true;
  }

 private:
  void serve(std::size_t id) {
    in_pool_job = true;
    uint64_t seen = 0;
    for (;;) {
      // Wait for a new job: spin a little (the next stage of a round follows within
      // microseconds), then sleep.
      if (spin_) spin_until([&] { return generation_.load() != seen; });
      const std::function<void(std::size_t)>* slot;
      std::size_t slots;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        seen = generation_.load();
        slot = slot_;
        slots = slots_;
      }
      if (id >= slots) continue;
      (*slot)(id);
      if (pending_.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  // Yields until ready() or for about 50 microseconds (a wake-up from sleep costs about as much).
  template <typename Ready>
  static void spin_until(Ready ready) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    for (int i = 1; !ready(); ++i) {
      std::this_thread::yield();
      if (i % 16 == 0 && std::chrono::steady_clock::now() > end) return;
    }
  }

  const pid_t pid_ = getpid();
  const std::size_t cores_ = std::max(1u, std::thread::hardware_concurrency());
  std::mutex busy_;                  // held by the job in progress
  std::vector<std::thread> threads_; // pool thread i serves slot i + 1
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<std::size_t> pending_{0};
  std::atomic<bool> spin_{false};
  const std::function<void(std::size_t)>* slot_ = nullptr;
  std::size_t slots_ = 0;
};

// Runs slot(w) for w in [0, W) on W threads (the caller runs slot 0). `slot` must not throw.
void run_slots(std::size_t W, const std::function<void(std::size_t)>& slot) {
  if (W == 1) {
    slot(0);
    return;
  }
  // Never destroyed: its threads block in a wait at exit.
  static SlotPool* pool = new SlotPool;
  if (pool->run(W, slot)) return;
  std::vector<std::thread> spawned;
  for (std::size_t w = 1; w < W; ++w) spawned.emplace_back(slot, w);
  slot(0);
  for (std::thread& t : spawned) t.join();
}

}  // namespace

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
  run_slots(workers, [&](std::size_t w) {
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
  });
  if (error) std::rethrow_exception(error);
}

void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& task) {
  parallel_for_workers(n, threads, [&task](std::size_t i, std::size_t) { task(i); });
}

void parallel_for_workers(std::size_t n, int threads,
                          const std::function<void(std::size_t, std::size_t)>& task) {
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, n));
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::exception_ptr error;
  run_slots(workers, [&](std::size_t worker) {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        task(i, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = std::current_exception();
        next = n;
      }
    }
  });
  if (error) std::rethrow_exception(error);
}

void parallel_for_owned(std::size_t n, int threads, const std::function<void(std::size_t)>& task) {
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, n));
  if (workers == 1) {
    for (std::size_t i = 0; i < n; ++i) task(i);
    return;
  }
  // [workers] the next task of each worker's block, a cache line each (taken by the owner and
  // by helpers alike)
  struct alignas(64) Next {
    std::atomic<std::size_t> at{0};
  };
  std::vector<Next> next(workers);
  for (std::size_t w = 0; w < workers; ++w) next[w].at.store(n * w / workers);
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::exception_ptr error;
  run_slots(workers, [&](std::size_t worker) {
    for (std::size_t k = 0; k < workers && !failed.load(std::memory_order_relaxed); ++k) {
      const std::size_t w = (worker + k) % workers, end = n * (w + 1) / workers;
      for (std::size_t i; (i = next[w].at.fetch_add(1)) < end;) {
        try {
          task(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex);
          if (!error) error = std::current_exception();
          failed = true;
          break;
        }
        if (failed.load(std::memory_order_relaxed)) break;
      }
    }
  });
  if (error) std::rethrow_exception(error);
}

}  // namespace septa::crf
