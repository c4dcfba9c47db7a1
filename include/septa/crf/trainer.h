// Training entry points for every algorithm, with progress reporting and cancellation.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "septa/crf/corpus.h"
#include "septa/crf/feature_template.h"
#include "septa/crf/model.h"
#include "septa/crf/options.h"

namespace septa::crf {

// One progress report (an optimiser iteration, or a phase of a non-iterative algorithm).
struct TrainProgress {
  std::string phase;                // "lbfgs", "unary", "pairwise", "counts", ...
  int iteration = 0;
  double objective = 0.0;           // regularised objective being minimised
  double grad_norm = 0.0;
  std::size_t active_features = 0;  // non-zero weights
  double seconds = 0.0;             // since training started
  double dev_accuracy = NAN;        // held-out token accuracy (percent) when dev data is given
  double dev_f1 = NAN;              // held-out chunk F1 (percent) when the dev gold has chunks
  // Reporting only (never read back by training): what CRFsuite logs per iteration, where the
  // algorithm has it.
  double feature_norm = NAN;        // |w|_2 of the reported weights (lbfgs, l2sgd, ap, pa, arow)
  int linesearch_trials = 0;        // lbfgs: objective evaluations of this line search (0: none)
  double linesearch_step = NAN;     // lbfgs: the step the line search accepted
  // Held-out counts as CRFsuite's evaluation reports them (zero without dev data): per model
  // label (in the model's label order), items and whole sequences labelled correctly.
  struct LabelCounts {
    std::string label;
    std::size_t match = 0;  // items guessed as `label` whose gold label is `label`
    std::size_t model = 0;  // items guessed as `label`
    std::size_t ref = 0;    // items whose gold label is `label`
  };
  std::vector<LabelCounts> dev_labels;  // [L]
  std::size_t dev_items = 0, dev_items_correct = 0;
  std::size_t dev_sequences = 0, dev_sequences_correct = 0;
};

// The one-line report of a progress step, without newline, as `septa train` and the Python
// package's verbose mode print it (the format is septa_util's, util/progress_line.h):
//   "lbfgs    iter   12  objective 1234.5  |g| 0.5  active 4000  1.23s  dev acc 95.10 F1 93.20"
std::string format_progress(const TrainProgress& progress);

// Called after each iteration; return false to stop (the best model so far is kept).
using ProgressCallback = std::function<bool(const TrainProgress&)>;

struct TrainResult {
  Model model;
  bool cancelled = false;      // stopped by the callback
  int iterations = 0;          // optimiser iterations (summed over factors)
  double seconds = 0.0;        // wall time of training
  std::size_t features = 0;    // feature count of the model
  std::string stop_reason;     // e.g. "converged", "max iterations", "cancelled"
  std::size_t bytes_sent = 0;      // over ranks: bytes a rank sends per gradient evaluation
  std::size_t bytes_received = 0;  // over ranks: bytes a rank receives per gradient evaluation
  int kept_iteration = -1;     // iteration kept for its dev score; -1 when the last one was kept
  std::string kept_metric;     // the dev metric that chose it: "F1" (chunks) or "accuracy"
  double kept_score = NAN;     // its dev score (percent)
  double chosen_c2 = NAN;      // --c2 auto: the c2 chosen on the dev data
  double chosen_eta = NAN;     // l2sgd: the learning rate chosen by the calibration
};

// Trains on column-format data expanded by `feature_template`; `dev` (may be empty) is used for
// held-out scores and to keep the best model. `name` and `dev_name` prefix input error messages.
TrainResult train(const std::vector<ColumnSentence>& data, const std::string& name,
                  const FeatureTemplate& feature_template, const TrainOptions& options,
                  const std::vector<ColumnSentence>& dev = {},
                  const ProgressCallback& progress = nullptr,
                  const std::string& dev_name = "dev data");
// The same model; `data` is released once encoded (the sentences' strings cost more than the
// training's buffers: CoNLL-2003 NER at 1 thread peaked at 233 MB holding them).
TrainResult train(std::vector<ColumnSentence>&& data, const std::string& name,
                  const FeatureTemplate& feature_template, const TrainOptions& options,
                  const std::vector<ColumnSentence>& dev = {},
                  const ProgressCallback& progress = nullptr,
                  const std::string& dev_name = "dev data");

// Trains one model over the ranks of `comm` (data-parallel): every rank calls this with its
// part of the corpus (read_column_shard) and the same options; rank 0's model is the result,
// byte for byte the model of one process on the whole file read by read_column_shard with the
// same block count, for any number of ranks. Rank 0 alone scores `dev` and reports progress.
// Over more than one rank only -a lbfgs, and -a separate / memm with SGD, are supported
// (OptionError otherwise); the other ranks' models then have no attribute strings (only rank 0
// writes the model). The shard's sentences are released once encoded.
TrainResult train_sharded(ColumnShard shard, const std::string& name,
                          const FeatureTemplate& feature_template, const TrainOptions& options,
                          Communicator& comm, const std::vector<ColumnSentence>& dev = {},
                          const ProgressCallback& progress = nullptr,
                          const std::string& dev_name = "dev data");

// Trains on CRFsuite attribute-format data; `name` prefixes input error messages.
TrainResult train(const std::vector<AttributeSequence>& data, const TrainOptions& options,
                  const std::vector<AttributeSequence>& dev = {},
                  const ProgressCallback& progress = nullptr,
                  const std::string& name = "training data");

}  // namespace septa::crf
