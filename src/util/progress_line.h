// The one-line progress reports of long work, one format per kind of work for every client:
// `septa train` and the Python package's verbose mode (CRF training, through
// crf::format_progress), `septa nn ...` and the neural benchmarks (epochs).
#pragma once

#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace septa::util {

// One optimiser iteration, or one phase of a non-iterative algorithm.
struct IterationProgress {
  std::string_view phase;           // "lbfgs", "unary", "pairwise", "counts", ...
  int iteration = 0;
  double objective = 0.0;
  double grad_norm = 0.0;
  std::size_t active_features = 0;  // non-zero weights
  double seconds = 0.0;             // since the work started
  double dev_accuracy = NAN;        // percent; NAN: no held-out data
  double dev_f1 = NAN;              // percent; NAN: no chunks in the held-out gold
};

// "lbfgs    iter   12  objective 1234.5  |g| 0.5  active 4000  1.23s  dev acc 95.10 F1 93.20",
// without newline; the dev fields only when known.
std::string format_iteration(const IterationProgress& progress);

// "kept iteration 7: best dev F1 93.20": the iteration that training kept for its held-out
// score (`metric` "F1" or "accuracy", `score` in percent), without newline.
std::string format_kept_iteration(int iteration, std::string_view metric, double score);

// One finished epoch of a training stage, without newline:
//   "[cell 0] epoch 3/10  loss 0.12345  test accuracy 0.91234  12.3s"
// (`metrics` in name order, `seconds` the epoch's training time). A stage without epochs
// (`epochs` 0: a step of a longer pipeline) is reported by its name alone.
std::string format_epoch(std::string_view stage, int epoch, int epochs,
                         const std::map<std::string, double>& metrics, double seconds);

}  // namespace septa::util
