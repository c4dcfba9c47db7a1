// The method registry: each method's table of options and entry points. A new method adds a
// folder under src/nn/methods/ and one line to registry.cc.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "nn/data/dataset.h"
#include "nn/loop.h"
#include "nn/options.h"
#include "septa/nn/nn.h"

namespace septa::nn {

// Where a method's run reads its data and writes its files.
struct RunInputs {
  const Options& options;
  const Split& data;  // on the run's device
  RunContext& ctx;
  std::string dir;    // parts are saved here ("": not saved)
};

// Entry points of methods made of separately trainable parts (cells) and a head.
struct PartsEntry {
  // The number of parts the options ask for.
  std::function<int(const Options&)> count;
  // Loads parts 0..k-1 from inputs.dir, trains part k, saves it.
  std::function<RunResult(const RunInputs&, int k)> train_part;
  // Loads every part from inputs.dir, trains the head, saves it, tests.
  std::function<RunResult(const RunInputs&)> train_head;
  // Tests the saved parts and head of inputs.dir.
  std::function<RunResult(const RunInputs&)> evaluate;
  // Compares the parts and head of two directories bit for bit, one line per file.
  std::function<bool(const std::string&, const std::string&, std::ostream&)> compare;
};

// Entry points of methods whose model runs at several widths (the ViT family).
struct WidthsEntry {
  // Tests the model saved in inputs.dir at each width (see septa::nn::width_report).
  std::function<std::vector<WidthRow>(const RunInputs&, const std::vector<double>& off_grid,
                                      bool latency)>
      report;
  // Writes width r of the model saved in inputs.dir as a dense checkpoint (empty: not slimmable).
  std::function<void(const RunInputs&, double r, const std::string& path)> export_width;
};

struct MethodEntry {
  MethodInfo info;
  // Trains and tests in this process; saves parts to inputs.dir when set.
  std::function<RunResult(const RunInputs&)> train;
  PartsEntry parts;  // empty functions unless info.has_parts
  WidthsEntry widths;  // empty functions unless the model runs at several widths
};

const std::vector<MethodEntry>& registry();
// OptionError listing the registered names when `name` is unknown.
const MethodEntry& find_method(const std::string& name);

// The metadata every file of a run carries (method, options, seed, format version).
Metadata run_metadata(const Options& options);

}  // namespace septa::nn
