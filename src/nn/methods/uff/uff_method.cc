// The UFF pipelines as registered methods: one options table per cell kind; in-process training
// and the part-by-part pipeline steps.
#include "nn/methods/uff/uff_method.h"

#include <fstream>
#include <ostream>

#include "nn/methods/uff/uff.h"

namespace septa::nn {
namespace {

int count_cells(const std::string& dir) {
  int count = 0;
  while (std::ifstream(cell_path(dir, count)).good()) ++count;
  if (count == 0) throw IoError(cell_path(dir, 0) + ": no such cell file");
  return count;
}

bool compare_dirs(const std::string& a, const std::string& b, std::ostream& report) {
  const int count = count_cells(a);
  if (count_cells(b) != count) {
    report << "different: " << a << " and " << b << " hold different numbers of cells\n";
    return false;
  }
  bool same = true;
  for (int k = 0; k < count; ++k) {
    Cell x = load_cell(cell_path(a, k));
    Cell y = load_cell(cell_path(b, k));
    const bool equal = same_weights(*x, *y);
    report << "cell " << k << ": " << (equal ? "bit-identical" : "DIFFERENT") << "\n";
    same = same && equal;
  }
  Head x = load_head(head_path(a));
  Head y = load_head(head_path(b));
  const bool equal = same_weights(*x, *y);
  report << "head: " << (equal ? "bit-identical" : "DIFFERENT") << "\n";
  return same && equal;
}

}  // namespace

MethodEntry uff_method(const std::string& name, CellKind kind) {
  MethodEntry entry;
  entry.info.name = name;
  entry.info.has_parts = true;
  const bool conv = kind == CellKind::kConvAutoencoder;
  entry.info.summary =
      std::string("unsupervised FF: separately trained ") +
      (kind == CellKind::kAutoencoder            ? "autoencoder"
       : kind == CellKind::kDenoisingAutoencoder ? "denoising autoencoder"
                                                 : "convolutional autoencoder") +
      " cells and a linear head";
  entry.info.options = {
      {"widths", OptionType::kSizes, conv ? "16,32" : "1000,1000", 1, 1e6, false,
       conv ? "channels per cell" : "latent units per cell"},
      epochs_option(5, "epochs per cell"),
      {"head-epochs", OptionType::kInteger, "10", 1, 100000, false, "epochs of the classifier head"},
      batch_option(),
      learning_rate_option("lr", "0.001", "AdamW learning rate of the cells"),
      learning_rate_option("head-lr", "0.001", "AdamW learning rate of the head"),
      {"weight-decay", OptionType::kReal, "0.0001", 0, 1, false, "AdamW weight decay"},
      {"head-hidden", OptionType::kInteger, "0", 0, 1e6, false,
       "hidden ReLU units of the head (0: linear head)"},
      seed_option(),
  };
  if (kind == CellKind::kDenoisingAutoencoder)
    entry.info.options.insert(entry.info.options.begin() + 7,
                              OptionSpec{"noise", OptionType::kReal, "0.3", 0, 1, false,
                                         "masking probability of the denoising cells",
                                         /*max_open=*/true});
  entry.train = [kind](const RunInputs& in) {
    return train_uff(uff_options(in.options, kind), in.data, in.ctx, in.dir);
  };
  entry.parts.count = [](const Options& o) { return static_cast<int>(o.sizes("widths").size()); };
  entry.parts.train_part = [kind](const RunInputs& in, int k) {
    return train_cell_from_dir(uff_options(in.options, kind), k, in.dir, in.data, in.ctx);
  };
  entry.parts.train_head = [kind](const RunInputs& in) {
    return train_head_from_dir(uff_options(in.options, kind), in.dir, in.data, in.ctx);
  };
  entry.parts.evaluate = [](const RunInputs& in) {
    RunResult result;
    result.method = in.options.method();
    result.metrics["test accuracy"] = evaluate_dir(in.dir, count_cells(in.dir), in.options.method(),
                                                   in.data.test, in.ctx.device);
    return result;
  };
  entry.parts.compare = compare_dirs;
  return entry;
}

}  // namespace septa::nn
