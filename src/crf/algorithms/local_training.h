// Shared steps of the locally normalised algorithms (separate, piecewise, MEMM): building
// instances and features, and fitting one softmax model with progress and cancellation.
#pragma once

#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "crf/optim/minimizer.h"
#include "crf/objectives/softmax_objective.h"
#include "crf/algorithms/training_context.h"

namespace septa::crf {

class RangeCache;

// Node instances (one per item, class = gold label) and edge instances (one per adjacent pair,
// class = pair_class[y_t][y_{t+1}], span 2).
std::vector<LocalInstance> node_instances(const Dataset& data);
std::vector<LocalInstance> edge_instances(const Dataset& data, const std::vector<int32_t>& pair_class,
                                          std::size_t L);

// Label pairs seen in training, in order of first appearance: pair_class [L][L] (-1 unseen).
struct LabelPairs {
  std::vector<int32_t> pair_class;  // [L][L]
  std::vector<int32_t> first;       // [K]
  std::vector<int32_t> second;      // [K]
};
LabelPairs observed_pairs(const Dataset& data, std::size_t L);
// observed_pairs of the corpus whose consecutive parts the ranks hold, in rank order (the
// first-seen order of one process on the whole corpus); every rank gets the same pairs.
LabelPairs observed_pairs_across(const Dataset& data, std::size_t L, Communicator& comm);

// Features (attribute, class) seen in `instances` (attributes of the k-th item shifted by k*A),
// built on `threads` threads (the same features for any count).
SparseFeatures instance_features(const Dataset& data, const std::vector<LocalInstance>& instances,
                                 std::size_t A, std::size_t K, int max_span, int min_freq,
                                 bool all_classes, int threads = 1);

// instance_features over ranks (context.sgd_ranks): the features of all `instances` (of the
// whole corpus, in item order), counted by each rank on the instances of its own items only
// and merged (build_features_across): the same features as one process, with the counting
// divided. Without ranks, instance_features on `threads` threads.
SparseFeatures instance_features_across(const TrainingContext& context,
                                        const std::vector<LocalInstance>& instances,
                                        std::size_t A, std::size_t K, int max_span, int min_freq,
                                        bool all_classes, int threads = 1);

// Reports progress of concurrently trained parts one line at a time, and stops them all once
// the callback asks to stop.
struct SharedProgress {
  std::mutex mutex;
  std::atomic<bool> stop{false};
};

// Runs `here` on the calling thread and `there` on a second one (the two parts of a separately
// trained model), or both on the calling thread when `threads` is 1. When either throws, both
// are told to stop and the first error is rethrown.
void run_both(const std::function<void()>& here, const std::function<void()>& there,
              SharedProgress& shared, int threads);

// Records in `result` the outcome of a model trained as two parts named `first_name` and
// `second_name`; `second_ran` is false when the second part had no instances.
void record_two_parts(const std::string& first_name, const MinimizerResult& first,
                      const std::string& second_name, const MinimizerResult& second,
                      bool second_ran, TrainResult& result);

// Fits `w` with the context's local optimiser, data-parallel over `threads` (the result does not
// depend on them): SGD with iterative parameter mixing over fixed shards (sgd.h) or
// L-BFGS/OWL-QN over fixed blocks. The L2 penalty is c2 ||w||^2 (NaN: --c2's value); SGD
// makes `epochs` passes (0: --epochs) with `mixes` mixes per epoch (0: --mixes). With
// `ranges`, the SGD's RangeCache of the instances (when it built one) is moved there; spread
// over ranks, `cached` then gets the cache index of each of `instances` (ShardedSgd::
// take_own_cached; empty in one process: instance i is entry i).
MinimizerResult fit_local(const TrainingContext& context, const std::string& phase,
                          const std::vector<LocalInstance>& instances,
                          const SoftmaxModelShape& shape, int threads, std::vector<double>& w,
                          SharedProgress& shared, double c2 = NAN, int epochs = 0,
                          int mixes = 0, std::unique_ptr<RangeCache>* ranges = nullptr,
                          std::vector<uint32_t>* cached = nullptr);
// Fits `w` by L-BFGS/OWL-QN (data-parallel over `threads`) whatever the local optimiser option.
MinimizerResult fit_local_lbfgs(const TrainingContext& context, const std::string& phase,
                                const std::vector<LocalInstance>& instances,
                                const SoftmaxModelShape& shape, int threads,
                                std::vector<double>& w, SharedProgress& shared,
                                double c2 = NAN);

/*
 * The L2 penalty of a separately trained factor with M instances, from --c2 and the factor's
 * own data (N training sequences; M = 0 keeps c2):
 *   c2_factor = c2 * min(1, N / M)
 * --c2 is CRFsuite's penalty against a log-likelihood summed over the N sequences; a factor's
 * log-likelihood sums over its M instances (one per item or edge, M/N of them per sequence),
 * each carrying one position's evidence. Scaling by N/M gives the same prior per sequence of
 * training data. With c2 = 1: 0.042 on CoNLL-2000 (23.7 items per sentence), 0.069 on
 * CoNLL-2003 (14.5). Chosen on development splits only (docs/crf.md, issue #8): factor penalties
 * 0.03 to 0.1 beat 1 on chunking, POS and NER alike; this rule over the old c2 = 1: chunk F1
 * 94.30 -> 94.45, POS 97.99 -> 98.11, NER (eng.testa) 89.47 -> 89.71. Only -a separate uses it.
 */
double factor_c2(double c2, std::size_t sequences, std::size_t instances);

// With SEPTA_SGD_PROFILE set: prints to stderr the process CPU time and the wall time since the
// previous call (the first call: since the process started), labelled `stage`, the calling
// thread's own CPU time (a stage that runs on one thread only has it near the process's, under
// any load), and the resident memory now and at its peak so far; else nothing.
// Run with --threads 1 for the CPU time of each stage.
void profile_stage(const char* stage);

}  // namespace septa::crf
