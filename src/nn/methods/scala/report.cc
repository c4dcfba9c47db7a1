// Per-width report (accuracy, parameters, MACs, latency) and export of a width as a dense ViT.
#include <algorithm>
#include <chrono>
#include <filesystem>

#include "nn/methods/scala/recipe.h"
#include "nn/methods/scala/scala.h"
#include "septa/error.h"

namespace septa::nn {
namespace {

constexpr int kRunsBatch1 = 40;
constexpr int kRunsBatch256 = 5;

// Median wall time per image of forward(batch) over `runs` runs after one warm-up run, in ms.
double latency_ms(Vit& net, const torch::Tensor& batch, int runs) {
  torch::NoGradGuard no_grad;
  net->eval();
  net->forward(batch);
  std::vector<double> times;
  for (int k = 0; k < runs; ++k) {
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor out = net->forward(batch).logits();
    if (out.is_cuda()) torch::cuda::synchronize();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2] / static_cast<double>(batch.size(0));
}

// The first n test images, repeated when the set is smaller.
torch::Tensor images(const Dataset& test, int64_t n) {
  torch::Tensor x = test.inputs;
  while (x.size(0) < n) x = torch::cat({x, test.inputs});
  return x.narrow(/*dim=*/0, 0, n);
}

void measure(WidthRow& row, Vit dense, const Dataset& test) {
  dense->to(test.inputs.device());  // an exported slice is built on the CPU
  row.latency_batch1_ms = latency_ms(dense, images(test, 1), kRunsBatch1);
  row.latency_batch256_ms = latency_ms(dense, images(test, 256), kRunsBatch256);
}

SlimmableVit load_model(const RunInputs& in) {
  if (in.dir.empty()) throw OptionError("the width report and export need --save-dir DIR");
  SlimmableVit model = load_vit(part_path(in.dir, "model"));
  model.net()->to(in.ctx.device);
  model.net()->eval();
  return model;
}

// The ratios of the separately trained ViTs in `dir` (files vit_<r>.safetensors), ascending: every
// ViT of the directory, also those trained by another process (the bench trains the r = 1 ViT
// beside the smaller ones).
std::vector<double> separate_ratios(const std::string& dir) {
  std::vector<double> ratios;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = "vit_", suffix = ".safetensors";
    if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string text = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    char* end = nullptr;
    const double r = std::strtod(text.c_str(), &end);
    if (end == text.c_str() + text.size() && r > 0 && r <= 1 && ratio_text(r) == text) ratios.push_back(r);
  }
  std::sort(ratios.begin(), ratios.end());
  return ratios;
}

}  // namespace

std::vector<WidthRow> slimmable_report(const RunInputs& in, const std::vector<double>& off_grid,
                                       bool latency) {
  SlimmableVit model = load_model(in);
  const VitConfig& c = model.net()->config();
  std::vector<Slice> slices;
  for (int64_t d : model.grid().widths()) slices.push_back(model.slice(d));
  for (double r : off_grid) slices.push_back(model.slice_unchecked(r));
  std::vector<WidthRow> rows;
  for (const Slice& s : slices) {
    WidthRow row;
    row.channels = s.d;
    row.ratio = static_cast<double>(s.d) / static_cast<double>(c.dim);
    row.on_grid = model.grid().on_grid(row.ratio);
    row.accuracy = test_accuracy([&](const torch::Tensor& x) {
      return model.net()->forward_slice(x, s).logits();
    }, in.data.test);
    row.stored_parameters = stored_parameters(*model.net());
    row.active_parameters = vit_parameters(c, s.d);
    row.macs = vit_macs(c, s.d);
    if (latency) measure(row, export_slice(*model.net(), s), in.data.test);
    rows.push_back(row);
  }
  return rows;
}

void slimmable_export(const RunInputs& in, double r, const std::string& path) {
  SlimmableVit model = load_model(in);
  SlimmableVit dense = dense_model(export_slice(*model.net(), model.slice(model.grid().width_of(r))));
  Metadata metadata = in.ctx.metadata;
  metadata["septa.nn.vit.exported_ratio"] = ratio_text(r);
  save_vit(dense, metadata, path);
}

std::vector<WidthRow> separate_report(const RunInputs& in, const std::vector<double>& off_grid,
                                      bool latency) {
  if (!off_grid.empty())
    throw OptionError("separately trained ViTs exist only at their --widths: no off-grid widths");
  if (in.dir.empty()) throw OptionError("the width report needs --save-dir DIR");
  std::vector<WidthRow> rows;
  int64_t stored = 0;
  for (const double ratio : separate_ratios(in.dir)) {
    SlimmableVit model = load_vit(part_path(in.dir, "vit_" + ratio_text(ratio)));
    Vit net = model.net();
    net->to(in.ctx.device);
    net->eval();
    const VitConfig& c = net->config();
    WidthRow row;
    row.ratio = ratio;
    row.channels = c.dim;
    row.accuracy = test_accuracy([&](const torch::Tensor& x) { return net->forward(x).logits(); },
                                 in.data.test);
    row.active_parameters = vit_parameters(c, c.dim);
    row.macs = vit_macs(c, c.dim);
    stored += row.active_parameters;
    if (latency) measure(row, net, in.data.test);
    rows.push_back(row);
  }
  for (auto& row : rows) row.stored_parameters = stored;
  return rows;
}

}  // namespace septa::nn
