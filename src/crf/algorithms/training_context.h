// What every training algorithm receives, and the shared held-out scoring and best-model
// bookkeeping.
#pragma once

#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crf/features/dataset.h"
#include "crf/features/encoder.h"
#include "crf/lattice/lattice.h"
#include "crf/optim/minimizer.h"
#include "crf/parallel/collective.h"
#include "crf/scoring/scorer.h"
#include "septa/crf/trainer.h"

namespace septa::crf {

// Fills a lattice for one sequence from some (possibly not yet final) weights.
using PotentialsFunction = std::function<void(const SequenceView&, Lattice&)>;

struct TrainingContext {
  const Dataset& data;                              // encoded training data
  const Encoder& encoder;                           // dictionaries (frozen)
  const TrainOptions& options;
  const Dataset& dev;                               // encoded dev data (may be empty)
  const std::vector<std::vector<std::string>>& dev_gold;  // [N_dev][T] gold label strings
  const ProgressCallback& progress;
  std::chrono::steady_clock::time_point start;
  // Training data spread over ranks: `data` is this rank's part (null: one process).
  const BlockLayout* layout = nullptr;

  double seconds() const;
  // Decodes the dev set with `potentials`; fills progress.dev_accuracy and dev_f1.
  void score_dev(const PotentialsFunction& potentials, TrainProgress& progress_out) const;
  // Reports progress; returns false when the caller asked to stop.
  bool report(TrainProgress& progress_out) const;
};

// False for column data read through a CRF++ template without a B line: the model then has
// no transition features.
bool has_transitions(const Encoder& encoder);

// The optimiser settings of the training options.
MinimizerOptions minimizer_options(const TrainOptions& options);

// After a non-iterative or multi-part algorithm: scores the dev data with the finished scorer
// and reports it as one progress line (nothing without dev data).
void report_final(const TrainingContext& context, const std::string& phase, int iterations,
                  const Scorer& scorer);

// Keeps the weights with the best held-out score (or the latest when there is no dev data).
// Every offer is ranked by the same metric: chunk F1 when the dev gold labels have chunks
// (progress.dev_f1 is then a number at every iteration), else token accuracy. Ties keep the
// later weights.
class BestWeights {
 public:
  // Offers the current weights [F]; returns true when they became the best.
  bool offer(const double* w, std::size_t F, const TrainProgress& progress);
  bool empty() const { return weights_.empty(); }
  std::vector<double>& weights() { return weights_; }
  int iteration() const { return iteration_; }       // of the kept weights
  double score() const { return best_score_; }        // percent; NaN without dev data
  const std::string& metric() const { return metric_; }  // "F1", "accuracy" or ""

 private:
  std::vector<double> weights_;  // [F]
  double best_score_ = NAN;
  int iteration_ = 0;
  std::string metric_;
};

// What an algorithm hands back; the trainer adds the encoder to make a model.
struct AlgorithmResult {
  std::unique_ptr<Scorer> scorer;
  bool cancelled = false;
  int iterations = 0;
  std::string stop_reason;
  int kept_iteration = -1;   // the iteration whose weights were kept by dev score; -1: the last
  std::string kept_metric;   // "F1" or "accuracy" when kept_iteration >= 0
  double kept_score = NAN;   // its dev score (percent)
  double chosen_c2 = NAN;    // --c2 auto: the c2 the search chose
};

// Fills the kept-model fields of `result` from `best` when the dev score chose the weights.
void record_kept(const BestWeights& best, AlgorithmResult& result);

// Algorithm entry points (one file each).
AlgorithmResult train_lbfgs(const TrainingContext& context);
AlgorithmResult train_piecewise(const TrainingContext& context);
AlgorithmResult train_separate(const TrainingContext& context);
AlgorithmResult train_separate_counts(const TrainingContext& context);
AlgorithmResult train_memm(const TrainingContext& context);
AlgorithmResult train_ap(const TrainingContext& context);
AlgorithmResult train_pa(const TrainingContext& context);
AlgorithmResult train_arow(const TrainingContext& context);

}  // namespace septa::crf
