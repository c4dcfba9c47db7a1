// septa::nn, the neural modules: a registry of layer-local and separately trained methods, each
// with one table of options, trained by one loop, saved as safetensors checkpoints.
//
// This is what the command line (septa nn) and embedding programs call; everything else lives
// under src/nn/.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "septa/error.h"

namespace septa::nn {

// The requested device does not exist here (--device cuda without CUDA).
class DeviceError : public Error {
 public:
  using Error::Error;
};

enum class OptionType { kInteger, kReal, kSizes };

// One option of a method, declared once: the CLI's help, its validation and the checkpoint
// metadata all come from this row.
struct OptionSpec {
  std::string name;           // "epochs": the flag is --epochs
  OptionType type = OptionType::kInteger;
  std::string default_value;  // as text: "5", "0.001", "1000,1000"
  double min = 0;             // allowed range; for kSizes the range of each entry
  double max = 0;
  bool min_open = false;      // (min, max] instead of [min, max]
  std::string help;
  bool max_open = false;      // [min, max) instead of [min, max]

  // "[1, 100000]", "(0, 10]", "list of [1, 100000]"
  std::string range() const;
};

// A registered method as users see it.
struct MethodInfo {
  std::string name;     // "ff", "uff-ae", ...
  std::string summary;  // one line
  std::vector<OptionSpec> options;
  bool has_parts = false;  // trainable part by part in separate processes (train-cell/train-head)
};

// All registered methods, in registration order.
const std::vector<MethodInfo>& methods();
// The method named `name`; OptionError listing the known names otherwise.
const MethodInfo& method(const std::string& name);

using OptionValues = std::map<std::string, std::string>;  // option name -> value as given

// A progress report after every epoch of every stage (a cell, the head, FF, backprop).
struct Progress {
  std::string stage;  // "cell 0", "head", "ff", "backprop"
  int epoch = 0;      // 1-based
  int epochs = 0;
  double seconds = 0.0;  // training wall time of the epoch (evaluation excluded)
  std::map<std::string, double> metrics;  // "loss", "layer 0 loss", "test accuracy", ...
};

// Receives progress; returning false stops the run after the current epoch (its state is
// saved when the run has a directory, so --resume continues it).
using ProgressCallback = std::function<bool(const Progress&)>;

struct RunConfig {
  std::string method;
  OptionValues options;        // unset options take the method's defaults
  std::string data_dir = "/usr/share/datasets/fashion-mnist";  // IDX files (Debian's package)
  int64_t limit = 0;           // first N training examples (0: all)
  int64_t test_limit = 0;      // first N test examples (0: all)
  std::string device = "auto";  // auto | cpu | cuda
  int threads = 1;             // torch intra-op threads
  std::string dir;             // parts, checkpoints and training state ("": none)
  bool resume = false;         // continue an interrupted run from the state in `dir`
};

struct PartResult {
  std::string name;                       // "cell 0", "head", "layer 1", "end-to-end"
  std::map<std::string, double> metrics;  // final-epoch "loss", ...
};

struct RunResult {
  std::string method;
  bool cancelled = false;                 // stopped by the progress callback
  std::map<std::string, double> metrics;  // "test accuracy" (in [0, 1]) when measured
  std::vector<PartResult> parts;
  double seconds = 0.0;  // training wall time (data loading and evaluation excluded)
  std::string device;    // "cpu", "cuda"
};

// Trains `config.method` in this process and tests it; parts are saved to config.dir if set.
RunResult train(const RunConfig& config, const ProgressCallback& progress);
// One step of a part-by-part pipeline: loads parts 0..k-1 from config.dir, trains part k, saves it.
RunResult train_part(const RunConfig& config, int k, const ProgressCallback& progress);
// The last pipeline step: loads every part from config.dir, trains the head, saves it, tests.
RunResult train_head(const RunConfig& config, const ProgressCallback& progress);
// Tests the parts and head saved in config.dir (the method is read from the files).
RunResult evaluate(const RunConfig& config);
// Writes one line per part to `report`; true when both directories hold bit-identical weights.
bool compare(const std::string& dir_a, const std::string& dir_b, std::ostream& report);

// One width of a model that runs at several widths (scala, usnet, vit-separate).
struct WidthRow {
  double ratio = 0;       // r = d / D
  int64_t channels = 0;   // d
  bool on_grid = true;    // false: a width the model was not trained at (asked for explicitly)
  double accuracy = 0;    // test accuracy in [0, 1]
  int64_t stored_parameters = 0;  // every weight the method stores to serve all its widths
  int64_t active_parameters = 0;  // the weights used at this width
  int64_t macs = 0;               // multiply-accumulates per image
  double latency_batch1_ms = 0;    // per image at batch 1, median (0: not measured)
  double latency_batch256_ms = 0;  // per image at batch 256, median (0: not measured)
};

// Tests the model saved in config.dir (by train with --save-dir) at every width it serves, plus
// the ratios `off_grid` (slimmable models only: OptionError for other methods or ratios that are
// not whole multiples of the heads); latency is measured on the width exported as a dense ViT
// when `latency`. The method and its options are read from the files.
std::vector<WidthRow> width_report(const RunConfig& config, const std::vector<double>& off_grid,
                                   bool latency);
// Writes width r of the slimmable model in config.dir as a standalone dense ViT checkpoint
// (kind "vit") that loads and runs as a plain ViT of that width with identical logits.
// OptionError naming the nearest grid widths when r is off the grid.
void export_width(const RunConfig& config, double r, const std::string& path);

// "cpu" or "cuda" for auto | cpu | cuda; DeviceError naming CUDA when cuda is asked for and
// absent, OptionError for another name.
std::string resolve_device(const std::string& name);
// Sets torch's intra-op threads; OptionError for threads < 1.
void set_threads(int threads);
// Peak resident set size of this process in KiB (VmHWM), 0 when unknown.
int64_t peak_rss_kib();

}  // namespace septa::nn
