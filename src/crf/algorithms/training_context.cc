#include "crf/algorithms/training_context.h"

#include <algorithm>
#include <cmath>

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
  for (std::size_t n = 0; n < dev.size(); ++n) {
    const SequenceView s = dev.sequence(n);
    if (s.T == 0) continue;
    potentials(s, lattice);
    best.resize(s.T);
    lattice.viterbi(best.data());
    guess.clear();
    for (int y : best) guess.push_back(encoder.labels().name(y));
    evaluator.add_sentence(dev_gold[n], guess);
  }
  const EvaluationResult result = evaluator.result();
  progress_out.dev_accuracy = result.accuracy();
  progress_out.dev_f1 = result.overall.f1();
}

bool TrainingContext::report(TrainProgress& progress_out) const {
  progress_out.seconds = seconds();
  return !progress || progress(progress_out);
}

MinimizerOptions minimizer_options(const TrainOptions& options) {
  MinimizerOptions m;
  m.c1 = options.c1;
  m.c2 = options.c2;
  m.max_iterations = options.max_iterations;
  m.period = options.period;
  m.delta = options.delta;
  m.epsilon = options.epsilon;
  return m;
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

void record(const MinimizerResult& minimized, TrainResult& result) {
  result.cancelled = minimized.cancelled;
  result.iterations = minimized.iterations;
  result.stop_reason = minimized.stop_reason;
}

bool BestWeights::offer(const double* w, std::size_t F, const TrainProgress& progress) {
  // Rank by chunk F1 when the dev set has chunks, else by token accuracy; without dev data the
  // latest weights are the best.
  double score = 0.0;
  if (!std::isnan(progress.dev_f1) && progress.dev_f1 > 0.0) {
    score = progress.dev_f1;
  } else if (!std::isnan(progress.dev_accuracy)) {
    score = progress.dev_accuracy;
  }
  if (!weights_.empty() && score < best_score_) return false;
  best_score_ = score;
  weights_.assign(w, w + F);
  return true;
}

}  // namespace septa::crf
