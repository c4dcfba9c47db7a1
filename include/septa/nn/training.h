// Shared training harness types: progress reports, results, determinism and batching helpers.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace septa::nn {

// One progress report, sent after every epoch of every stage (a cell, the head, FF, backprop).
struct TrainProgress {
  std::string stage;          // "cell 0", "head", "ff", "backprop"
  int epoch = 0;              // 1-based
  int epochs = 0;             // epochs of this stage
  std::vector<double> losses; // mean local loss per cell / layer over the epoch
  double seconds = 0.0;       // wall time of the epoch
  double accuracy = -1.0;     // test accuracy when measured this epoch, else -1
};

// Receives progress; returning false stops training (the trainer then throws septa::Cancelled).
using ProgressCallback = std::function<bool(const TrainProgress&)>;

// The outcome of one method run on a train/test split.
struct MethodResult {
  std::string method;                 // "ff", "uff-ae", ..., "backprop"
  double test_accuracy = 0.0;         // in [0, 1]
  std::vector<std::string> parts;     // names of the separately trained parts ("cell 0", ...)
  std::vector<double> part_losses;    // final-epoch mean local loss per part
  double seconds = 0.0;               // training wall time (excluding data loading)
  int epochs = 0;                     // epochs per part
};

// Sets torch's intra-op thread count (at most the machine's cores is sensible) and interop threads.
void set_threads(int threads);

// Seeds torch's global generator; all randomness in septa::nn flows from it.
void seed_everything(uint64_t seed);

// A permutation of [0, n) drawn from torch's global generator.
torch::Tensor shuffled_order(int64_t n);  // [n] int64

// Rows [start, start + size) of `order`, clipped at the end.
torch::Tensor batch_indices(const torch::Tensor& order, int64_t start, int64_t size);

// Fraction of `predictions` equal to `labels` ([N] int64 each).
double accuracy(const torch::Tensor& predictions, const torch::Tensor& labels);

// Peak resident set size of this process in KiB (VmHWM), 0 when unknown.
int64_t peak_rss_kib();

// Calls `callback` if set; throws septa::Cancelled when it returns false.
void report_progress(const ProgressCallback& callback, const TrainProgress& progress);

// Seconds since `start`.
double seconds_since(const std::chrono::steady_clock::time_point& start);

}  // namespace septa::nn
