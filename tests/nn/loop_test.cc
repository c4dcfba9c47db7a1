// The shared loop through every registered method on a small synthetic split: cancellation is
// a return value, resuming an interrupted run equals the uninterrupted run bit for bit, and the
// run's own generators make it independent of torch's global generator.
#include "nn/loop.h"

#include <gtest/gtest.h>

#include <sstream>

#include "nn/methods/uff/uff.h"
#include "nn/registry.h"
#include "nn/test_util.h"

namespace septa::nn {
namespace {

// n synthetic 1x8x8 "images": class c brightens row c; labels 0..7.
Dataset synthetic_set(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  const torch::Tensor labels = torch::randint(0, 8, {n}, torch::kInt64);
  torch::Tensor images = torch::rand({n, 64}) * 0.3;
  for (int64_t i = 0; i < n; ++i) images[i].narrow(0, 8 * labels[i].item<int64_t>(), 8).add_(0.6);
  Dataset set = tabular_dataset(images, labels, /*classes=*/8);
  set.shape = {1, 8, 8};
  return set;
}

const Split& data() {
  static const Split split{synthetic_set(120, 1), synthetic_set(40, 2)};
  return split;
}

OptionValues small_options(const std::string& method) {
  if (method == "ff") return {{"hidden", "16,8"}, {"epochs", "3"}, {"batch", "30"}};
  if (method == "backprop") return {{"widths", "12,6"}, {"epochs", "3"}, {"batch", "30"}};
  if (method == "scala" || method == "usnet" || method == "vit-separate") {
    OptionValues o = {{"dim", "16"}, {"depth", "1"}, {"heads", "4"}, {"patch", "4"},
                      {"epochs", "2"}, {"batch", "30"}};
    if (method == "vit-separate") o["widths"] = "8,16";
    else o.insert({{"s", "0.25"}, {"eps", "0.25"}, {"warmup-epochs", "1"}, {"teacher-epochs", "1"}});
    return o;
  }
  OptionValues o = {{"widths", method == "uff-conv" ? "3,2" : "12,6"}, {"epochs", "2"},
                    {"head-epochs", "2"}, {"batch", "30"}};
  return o;
}

struct RunRecord {
  RunResult result;
  std::vector<Progress> reports;
};

// Trains `method` through its registry entry; the callback stops the run at report `stop_at`
// (1-based; 0: never).
RunRecord run(const std::string& method, const std::string& dir, bool resume, int stop_at) {
  const MethodEntry& entry = find_method(method);
  const Options options(entry.info, small_options(method));
  RunRecord out;
  RunContext ctx;
  ctx.state_dir = dir;
  ctx.resume = resume;
  ctx.metadata = run_metadata(options);
  ctx.progress = [&out, stop_at](const Progress& p) {
    out.reports.push_back(p);
    return static_cast<int>(out.reports.size()) != stop_at;
  };
  out.result = entry.train(RunInputs{options, data(), ctx, dir});
  return out;
}

void expect_same(const RunResult& a, const RunResult& b) {
  EXPECT_EQ(a.metrics, b.metrics);
  ASSERT_EQ(a.parts.size(), b.parts.size());
  for (size_t i = 0; i < a.parts.size(); ++i) {
    if (b.parts[i].metrics.empty()) continue;  // a part loaded on resume reports no loss
    EXPECT_EQ(a.parts[i].name, b.parts[i].name);
    EXPECT_EQ(a.parts[i].metrics, b.parts[i].metrics) << a.parts[i].name;
  }
}

class LoopTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { testing::setup_torch(); }
};

TEST_P(LoopTest, ReportsEveryEpochWithMetricsAndStopsOnRequest) {
  const RunRecord full = run(GetParam(), "", false, 0);
  EXPECT_FALSE(full.result.cancelled);
  const double accuracy = full.result.metrics.at("test accuracy");  // learning: reduced_run_test
  EXPECT_TRUE(accuracy >= 0.0 && accuracy <= 1.0);
  ASSERT_FALSE(full.reports.empty());
  for (const auto& p : full.reports) {
    EXPECT_GE(p.epoch, 1);
    EXPECT_LE(p.epoch, p.epochs);
    EXPECT_FALSE(p.metrics.empty());
    for (const auto& [name, value] : p.metrics) EXPECT_TRUE(std::isfinite(value)) << name;
  }
  const RunRecord stopped = run(GetParam(), "", false, 1);
  EXPECT_TRUE(stopped.result.cancelled);
  EXPECT_EQ(stopped.reports.size(), 1u);
}

TEST_P(LoopTest, ResumingAnInterruptedRunEqualsTheUninterruptedRun) {
  const std::string whole = testing::temp_dir("whole");
  const RunRecord reference = run(GetParam(), whole, false, 0);
  const int reports = static_cast<int>(reference.reports.size());
  // Interrupt after every possible report, then resume (twice for the first: a resumed run can
  // be interrupted and resumed again).
  for (int stop_at = 1; stop_at < reports; ++stop_at) {
    const std::string dir = testing::temp_dir("resumed");
    torch::manual_seed(4242);  // the global generator's state must not matter
    const RunRecord first = run(GetParam(), dir, false, stop_at);
    ASSERT_TRUE(first.result.cancelled) << "stop at " << stop_at;
    RunRecord second = run(GetParam(), dir, true, stop_at == 1 ? 1 : 0);
    if (stop_at == 1) {
      ASSERT_TRUE(second.result.cancelled);
      second = run(GetParam(), dir, true, 0);
    }
    ASSERT_FALSE(second.result.cancelled);
    expect_same(reference.result, second.result);
    if (find_method(GetParam()).info.has_parts) {
      std::ostringstream report;
      EXPECT_TRUE(find_method(GetParam()).parts.compare(whole, dir, report)) << report.str();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, LoopTest,
                         ::testing::Values("ff", "uff-ae", "uff-dae", "uff-conv", "backprop", "scala",
                                           "usnet", "vit-separate"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

TEST(DeviceTest, CudaWithoutCudaFailsNamingCuda) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has CUDA";
  try {
    resolve_device("cuda");
    FAIL() << "no error";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos);
  }
  EXPECT_EQ(resolve_device("auto"), "cpu");
  EXPECT_EQ(resolve_device("cpu"), "cpu");
  EXPECT_THROW(resolve_device("tpu"), OptionError);
}

}  // namespace
}  // namespace septa::nn
