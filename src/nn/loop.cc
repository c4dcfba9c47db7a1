// The training loop and run-wide helpers.
#include "nn/loop.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "septa/error.h"
#include "util/parse_int.h"

namespace septa::nn {
namespace {

constexpr const char* kStateKind = "state";

double seconds_since(const std::chrono::steady_clock::time_point& start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string metrics_text(const Metrics& metrics) {
  std::ostringstream out;
  out.precision(17);
  for (const auto& [key, value] : metrics) out << key << '=' << value << ';';
  return out.str();
}

// The metrics of a state file `path` (written by metrics_text); ModelError naming the file and
// the key on any item that is not name=number.
Metrics parse_metrics(const std::string& path, const std::string& key, const std::string& text) {
  Metrics metrics;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ';')) {
    const size_t eq = item.rfind('=');  // names may hold '=' ("test accuracy r=0.25")
    const char* number = eq == std::string::npos ? "" : item.c_str() + eq + 1;
    char* end = nullptr;
    const double value = std::strtod(number, &end);
    if (eq == std::string::npos || *number == '\0' || std::isspace(static_cast<unsigned char>(*number)) ||
        *end != '\0')
      throw ModelError(path + ": metadata " + key + " has a malformed item '" + item + "'");
    metrics[item.substr(0, eq)] = value;
  }
  return metrics;
}

void save_state(const Stage& stage, const RunContext& ctx, int epoch, const Metrics& metrics) {
  CheckpointWriter writer;
  for (const auto& [key, value] : ctx.metadata) writer.set(key, value);
  writer.set(kKindKey, kStateKind);
  writer.set("septa.nn.stage", stage.name);
  writer.set("septa.nn.epoch", std::to_string(epoch));
  writer.set("septa.nn.metrics", metrics_text(metrics));
  writer.add("generator", stage.generator.get_state());
  for (size_t i = 0; i < stage.modules.size(); ++i) {
    const std::string m = "module" + std::to_string(i) + ".";
    writer.add_module(m, *stage.modules[i]);
    if (i < stage.optimizers.size() && stage.optimizers[i])
      writer.add_optimizer("optimizer" + std::to_string(i) + ".", *stage.optimizers[i],
                           *stage.modules[i]);
  }
  writer.write(state_path(ctx.state_dir, stage.name));
}

// Restores a saved state; returns the number of epochs it had completed.
int restore_state(Stage& stage, const RunContext& ctx, const std::string& path, Metrics* metrics) {
  const Checkpoint file = Checkpoint::open(path, kStateKind);
  file.expect_method(ctx.metadata.at(kMethodKey));
  if (file.get(kOptionsKey) != ctx.metadata.at(kOptionsKey))
    throw ModelError(path + ": saved with options " + file.get(kOptionsKey) + ", not " +
                     ctx.metadata.at(kOptionsKey));
  if (file.get("septa.nn.stage") != stage.name)
    throw ModelError(path + ": state of stage " + file.get("septa.nn.stage"));
  const std::string& epoch_text = file.get("septa.nn.epoch");
  long long epoch = 0;
  if (!util::parse_int(epoch_text, 1, stage.epochs, epoch))
    throw ModelError(path + ": metadata septa.nn.epoch '" + epoch_text + "' is not an epoch in 1 to " +
                     std::to_string(stage.epochs));
  const torch::Tensor generator = stage.generator.get_state();
  stage.generator.set_state(file.tensor("generator", torch::kUInt8, {generator.size(0)}));
  for (size_t i = 0; i < stage.modules.size(); ++i) {
    file.load_module("module" + std::to_string(i) + ".", *stage.modules[i]);
    if (i < stage.optimizers.size() && stage.optimizers[i])
      file.load_optimizer("optimizer" + std::to_string(i) + ".", *stage.optimizers[i],
                          *stage.modules[i]);
  }
  *metrics = parse_metrics(path, "septa.nn.metrics", file.get("septa.nn.metrics"));
  return static_cast<int>(epoch);
}

bool exists(const std::string& path) { return std::ifstream(path).good(); }

std::mutex& build_mutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace

StageOutcome run_stage(Stage& stage, const RunContext& ctx) {
  SEPTA_CHECK(stage.step && stage.examples > 0 && stage.batch_size > 0);
  StageOutcome outcome;
  const bool saving = !ctx.state_dir.empty();
  const std::string state = saving ? state_path(ctx.state_dir, stage.name) : std::string();
  int done = 0;
  if (saving && ctx.resume && exists(state)) done = restore_state(stage, ctx, state, &outcome.metrics);
  const int64_t n = stage.examples;
  for (int epoch = done + 1; epoch <= stage.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor order =
        torch::randperm(n, stage.generator, torch::kInt64).to(ctx.device);  // [N]
    std::vector<double> sums(stage.loss_names.size(), 0.0);
    int64_t batches = 0;
    for (int64_t first = 0; first < n; first += stage.batch_size, ++batches) {
      const std::vector<double> losses = stage.step(batch_indices(order, first, stage.batch_size));
      SEPTA_CHECK(losses.size() == sums.size());
      for (size_t k = 0; k < losses.size(); ++k) sums[k] += losses[k];
    }
    Metrics metrics;
    for (size_t k = 0; k < sums.size(); ++k)
      metrics[stage.loss_names[k]] = sums[k] / static_cast<double>(batches);
    const double seconds = seconds_since(start);
    outcome.seconds += seconds;
    if (stage.evaluate)
      for (const auto& [key, value] : stage.evaluate()) metrics[key] = value;
    outcome.metrics = metrics;
    if (saving) save_state(stage, ctx, epoch, metrics);
    if (ctx.progress && !ctx.progress(Progress{stage.name, epoch, stage.epochs, seconds, metrics})) {
      outcome.stopped = true;
      if (epoch < stage.epochs) return outcome;
    }
  }
  outcome.complete = true;
  if (saving) std::remove(state.c_str());
  return outcome;
}

torch::Generator seeded_build(uint64_t seed, const std::function<void()>& build) {
  std::lock_guard<std::mutex> lock(build_mutex());
  torch::manual_seed(seed);
  build();
  return at::detail::getDefaultCPUGenerator().clone();
}

torch::Tensor batch_indices(const torch::Tensor& order, int64_t start, int64_t size) {
  const int64_t n = order.size(0);
  return order.narrow(/*dim=*/0, start, std::min(size, n - start));
}

double accuracy(const torch::Tensor& predictions, const torch::Tensor& labels) {
  SEPTA_CHECK(predictions.sizes() == labels.sizes());
  if (labels.numel() == 0) return 0.0;
  return predictions.eq(labels).to(torch::kFloat64).mean().item<double>();
}

torch::Device torch_device(const std::string& name) {
  return resolve_device(name) == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

std::string resolve_device(const std::string& name) {
  if (name == "cpu") return "cpu";
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw DeviceError(
          "--device cuda: CUDA is not available (this libtorch has no CUDA support or no GPU is "
          "visible); configure with -DSEPTA_TORCH_DIR=<a CUDA libtorch> or use --device cpu");
    return "cuda";
  }
  if (name == "auto") return torch::cuda::is_available() ? "cuda" : "cpu";
  throw OptionError("--device expects auto, cpu or cuda, got '" + name + "'");
}

void set_threads(int threads) {
  if (threads < 1) throw OptionError("--threads must be >= 1, got " + std::to_string(threads));
  torch::set_num_threads(threads);
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

}  // namespace septa::nn
