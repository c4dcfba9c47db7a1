#include "crf/algorithms/training_context.h"
#include "crf/optim/huge_pages.h"

#include <algorithm>
#include <cmath>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "septa/crf/evaluation.h"

namespace septa::crf {

double TrainingContext::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void TrainingContext::score_dev(const PotentialsFunction& potentials,
                                TrainProgress& progress_out) const {
  if (dev.size() == 0) return;
  ChunkEvaluator evaluator;
  Lattice lattice;
  std::vector<int> best;
  std::vector<std::string> guess;
  // CRFsuite's per-label counts, by label id [L]; a gold label unknown to the model (-1)
  // counts as a wrong item only.
  const std::size_t L = encoder.labels().size();
  std::vector<TrainProgress::LabelCounts> counts(L);
  std::size_t items = 0, items_correct = 0, sequences = 0, sequences_correct = 0;
  for (std::size_t n = 0; n < dev.size(); ++n) {
    const SequenceView s = dev.sequence(n);
    if (s.T == 0) continue;
    potentials(s, lattice);
    best.resize(s.T);
    lattice.viterbi(best.data());
    guess.clear();
    for (int y : best) guess.push_back(encoder.labels().name(y));
    evaluator.add_sentence(dev_gold[n], guess);
    std::size_t correct = 0;
    for (std::size_t t = 0; t < s.T; ++t) {
      const int y = best[t], gold = s.labels[t];
      counts[static_cast<std::size_t>(y)].model += 1;
      if (gold >= 0) counts[static_cast<std::size_t>(gold)].ref += 1;
      if (gold == y) {
        counts[static_cast<std::size_t>(y)].match += 1;
        correct += 1;
      }
    }
    items += s.T;
    items_correct += correct;
    sequences += 1;
    sequences_correct += correct == s.T;
  }
  for (std::size_t y = 0; y < L; ++y) counts[y].label = encoder.labels().name(static_cast<int>(y));
  progress_out.dev_labels = std::move(counts);
  progress_out.dev_items = items;
  progress_out.dev_items_correct = items_correct;
  progress_out.dev_sequences = sequences;
  progress_out.dev_sequences_correct = sequences_correct;
  const EvaluationResult result = evaluator.result();
  progress_out.dev_accuracy = result.accuracy();
  // F1 is defined only when the gold labels have chunks (IOB-style tags); POS-like tag sets
  // have none, and are ranked by accuracy.
  progress_out.dev_f1 = result.overall.gold > 0 ? result.overall.f1() : NAN;
}

bool TrainingContext::report(TrainProgress& progress_out) const {
  progress_out.seconds = seconds();
  return !progress || progress(progress_out);
}

bool has_transitions(const Encoder& encoder) {
  return encoder.format() != InputFormat::kColumns || encoder.feature_template().has_bigram();
}

MinimizerOptions minimizer_options(const TrainOptions& options) {
  MinimizerOptions m;
  m.c1 = options.c1;
  m.c2 = options.c2;
  m.max_iterations = options.max_iterations;
  m.period = options.period;
  m.delta = options.delta;
  m.epsilon = options.epsilon;
  m.memory = options.num_memories;
  m.linesearch = options.linesearch;
  m.max_linesearch = options.max_linesearch;
  return m;
}

TrainProgress iteration_progress(const std::string& phase, const MinimizerIteration& it) {
  TrainProgress progress;
  progress.phase = phase;
  progress.iteration = it.iteration;
  progress.objective = it.objective;
  progress.grad_norm = it.grad_norm;
  progress.active_features = it.active;
  progress.feature_norm = it.w_norm;
  progress.linesearch_trials = it.linesearch_trials;
  progress.linesearch_step = it.step;
  return progress;
}

void report_final(const TrainingContext& context, const std::string& phase, int iterations,
                  const Scorer& scorer) {
  if (context.dev.size() == 0) return;
  TrainProgress progress;
  progress.phase = phase;
  progress.iteration = iterations;
  progress.active_features = scorer.feature_count();
  context.score_dev([&](const SequenceView& s, Lattice& lattice) { scorer.potentials(s, lattice); },
                    progress);
  context.report(progress);
}

void release_free_memory() {
  trim_huge_pool();
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

/*
 * A fixed trim threshold of 1 MiB (mallopt M_TRIM_THRESHOLD; it also fixes the mapping
 * threshold at its default, 128 KiB). CoNLL-2000, -a lbfgs --threads 16 on 2 cores: 15 thread
 * heaps kept about 5 MB resident each with 0.3 MB in use (malloc_stats); peak resident memory
 * 230 -> 198 MB, the same with 131072; -a separate and one thread unchanged within noise.
 */
void limit_heap_retention() {
#ifdef __GLIBC__
  static const bool set = mallopt(M_TRIM_THRESHOLD, 1 << 20) != 0;
  (void)set;
#endif
}

void record(const MinimizerResult& minimized, TrainResult& result) {
  result.cancelled = minimized.cancelled;
  result.iterations = minimized.iterations;
  result.stop_reason = minimized.stop_reason;
}

bool BestWeights::offer(const double* w, std::size_t F, const TrainProgress& progress) {
  // Without dev data the latest weights are the best. With dev data the metric is fixed by the
  // dev gold labels (F1 is NaN at every iteration or at none), so all offers compare alike.
  std::string metric;
  double score = NAN;
  if (!std::isnan(progress.dev_f1)) {
    metric = "F1";
    score = progress.dev_f1;
  } else if (!std::isnan(progress.dev_accuracy)) {
    metric = "accuracy";
    score = progress.dev_accuracy;
  }
  if (!weights_.empty() && !std::isnan(score) && metric == metric_ && score < best_score_)
    return false;
  best_score_ = score;
  metric_ = metric;
  iteration_ = progress.iteration;
  weights_.assign(w, w + F);
  return true;
}

void record_kept(const BestWeights& best, TrainResult& result) {
  if (best.empty() || best.metric().empty()) return;
  result.kept_iteration = best.iteration();
  result.kept_metric = best.metric();
  result.kept_score = best.score();
}

}  // namespace septa::crf
