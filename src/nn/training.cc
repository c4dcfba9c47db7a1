// Shared training harness helpers.
#include "septa/nn/training.h"

#include <fstream>
#include <sstream>

#include "septa/error.h"

namespace septa::nn {

void set_threads(int threads) {
  if (threads < 1) throw OptionError("--threads must be >= 1, got " + std::to_string(threads));
  torch::set_num_threads(threads);
}

void seed_everything(uint64_t seed) { torch::manual_seed(seed); }

torch::Tensor shuffled_order(int64_t n) { return torch::randperm(n, torch::kInt64); }

torch::Tensor batch_indices(const torch::Tensor& order, int64_t start, int64_t size) {
  const int64_t n = order.size(0);
  return order.narrow(/*dim=*/0, start, std::min(size, n - start));
}

double accuracy(const torch::Tensor& predictions, const torch::Tensor& labels) {
  SEPTA_CHECK(predictions.sizes() == labels.sizes());
  if (labels.numel() == 0) return 0.0;
  return predictions.eq(labels).to(torch::kFloat64).mean().item<double>();
}

int64_t peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      int64_t kib = 0;
      fields >> kib;
      return kib;
    }
  }
  return 0;
}

void report_progress(const ProgressCallback& callback, const TrainProgress& progress) {
  if (callback && !callback(progress))
    throw Cancelled("training stopped during " + progress.stage + " epoch " +
                    std::to_string(progress.epoch));
}

double seconds_since(const std::chrono::steady_clock::time_point& start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace septa::nn
