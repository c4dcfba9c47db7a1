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
#include "crf/algorithms/checkpoint.h"
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
  // --checkpoint / --resume (null without them).
  Checkpoint* checkpoint = nullptr;
  // SGD training over ranks: every rank holds all of `data`; the SGD shards are spread over
  // these ranks and mixed in shard order (null: one process).
  Communicator* sgd_ranks = nullptr;
  // With sgd_ranks: the items [first, end) of `data` that this rank read (its own shard, whole
  // sequences); collective steps such as feature counting use only these.
  std::pair<std::size_t, std::size_t> own_items{0, 0};
  // With sgd_ranks: `data` is this rank's own part only (own_items is all of it), and the SGD
  // moves each factor's instances to the ranks that train them (ShardedSgd's spread mode).
  // Only -a separate trains so; memm and piecewise read the whole corpus.
  bool spread_data = false;
  // With spread_data: `data` itself, which the algorithm may empty once no step needs it.
  Dataset* releasable_data = nullptr;
  // Called by fit_local once a spread factor's instances were exchanged (the caller's own
  // copies may go then).
  std::function<void()> released = nullptr;
  // Called by fit_local once its optimiser is set up, before the first step (separate training:
  // the pairwise features, built meanwhile on another thread, are waited for there).
  std::function<void()> set_up = nullptr;

  double seconds() const;
  // Decodes the dev set with `potentials`; fills progress.dev_accuracy and dev_f1.
  void score_dev(const PotentialsFunction& potentials, TrainProgress& progress_out) const;
  // Reports progress; returns false when the caller asked to stop.
  bool report(TrainProgress& progress_out) const;
};

// The optimiser settings of the training options.
MinimizerOptions minimizer_options(const TrainOptions& options);

// The progress report of one minimiser iteration in `phase` (no held-out scores yet).
TrainProgress iteration_progress(const std::string& phase, const MinimizerIteration& it);

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

// An algorithm's entry point: returns the trained scorer and records how training ended in
// result.cancelled, result.iterations and result.stop_reason (the trainer fills in the rest).
using TrainFunction = std::unique_ptr<Scorer> (*)(const TrainingContext& context,
                                                  TrainResult& result);

// False for column data read through a CRF++ template without a B line: the model then has
// no transition features.
bool has_transitions(const Encoder& encoder);

// Returns the heap's free pages to the system: glibc keeps freed memory mapped (and a freed
// chunk raises its threshold for mapping large blocks separately), so without it the set-up's
// temporaries stay resident and the training buffers allocated after them add to the peak.
void release_free_memory();
// Makes the threads' heaps return their free tops to the system (glibc, once per process):
// malloc_trim (above) trims only the main heap's top, and a thread heap shrinks only when a
// free leaves its top above the trim threshold, which glibc raises to twice the largest block
// it has unmapped (megabytes here). Call before the threads allocate.
void limit_heap_retention();

// Records the optimiser's outcome in `result`.
void record(const MinimizerResult& minimized, TrainResult& result);
// Fills the kept-model fields of `result` from `best` when the dev score chose the weights.
void record_kept(const BestWeights& best, TrainResult& result);

// Algorithm entry points (one file each), registered in algorithm_table.cc.
std::unique_ptr<Scorer> train_lbfgs(const TrainingContext& context, TrainResult& result);
std::unique_ptr<Scorer> train_piecewise(const TrainingContext& context, TrainResult& result);
std::unique_ptr<Scorer> train_separate(const TrainingContext& context, TrainResult& result);
std::unique_ptr<Scorer> train_separate_counts(const TrainingContext& context,
                                              TrainResult& result);
std::unique_ptr<Scorer> train_memm(const TrainingContext& context, TrainResult& result);
std::unique_ptr<Scorer> train_ap(const TrainingContext& context, TrainResult& result);
std::unique_ptr<Scorer> train_pa(const TrainingContext& context, TrainResult& result);
std::unique_ptr<Scorer> train_arow(const TrainingContext& context, TrainResult& result);
std::unique_ptr<Scorer> train_l2sgd(const TrainingContext& context, TrainResult& result);

}  // namespace septa::crf
