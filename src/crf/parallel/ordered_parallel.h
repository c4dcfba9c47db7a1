// Deterministic data parallelism: blocks computed on any number of threads, committed in
// block order, so every reduction matches a one-thread run bit for bit.
#pragma once

#include <cstddef>
#include <functional>

namespace septa::crf {

// Runs work(block, worker) for blocks 0..B-1 on `threads` workers (worker w takes blocks
// w, w+threads, ...) and commit(block, worker) strictly in block order. The first exception
// thrown by any worker is rethrown on the calling thread.
void for_blocks_ordered(std::size_t B, int threads,
                        const std::function<void(std::size_t, std::size_t)>& work,
                        const std::function<void(std::size_t, std::size_t)>& commit);

// Runs task(i) for i in [0, n) on up to `threads` threads (any order); rethrows the first error.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& task);

// parallel_for that also names the worker running each task: task(i, worker), worker in
// [0, min(threads, n)), worker 0 the calling thread. Each worker takes the next task in index
// order when it is free (a worker may get none); no two tasks of one worker run at once.
void parallel_for_workers(std::size_t n, int threads,
                          const std::function<void(std::size_t, std::size_t)>& task);

// parallel_for whose worker w first runs the tasks [n w/W, n (w+1)/W) in order (W workers),
// then helps with the others' remaining tasks: passes over the same index ranges run each range
// on the same thread (its cache lines stay in that core's cache) unless a worker falls behind.
void parallel_for_owned(std::size_t n, int threads, const std::function<void(std::size_t)>& task);

}  // namespace septa::crf
