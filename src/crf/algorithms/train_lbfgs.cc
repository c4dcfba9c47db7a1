// Standard training: maximum likelihood by L-BFGS (L2) or OWL-QN (L1).
#include <algorithm>
#include <cmath>

#include "crf/algorithms/linear_chain_features.h"
#include "crf/objectives/crf_objective.h"
#include "crf/optim/minimizer.h"

namespace septa::crf {

std::unique_ptr<Scorer> train_lbfgs(const TrainingContext& context, TrainResult& result) {
  auto scorer = std::make_unique<LinearChainScorer>(build_linear_chain(context));
  const std::vector<char> mask = transition_mask(context);
  const std::size_t F = scorer->feature_count();
  const std::size_t offset = scorer->transition_offset();
  CrfObjective objective(context.data, *scorer, context.options.threads, context.layout);

  ObjectiveFunction f = [&](const double* w, double* g) {
    const double value = objective.evaluate(w, g);
    for (std::size_t q = 0; q < mask.size(); ++q)
      if (!mask[q]) g[offset + q] = 0.0;
    return value;
  };
  BestWeights best;
  IterationCallback callback = [&](const MinimizerIteration& it) {
    TrainProgress progress;
    progress.phase = "lbfgs";
    progress.iteration = it.iteration;
    progress.objective = it.objective;
    progress.grad_norm = it.grad_norm;
    progress.active_features = it.active;
    context.score_dev([&](const SequenceView& s, Lattice& lattice) { scorer->fill(s, it.w, lattice); },
                      progress);
    best.offer(it.w, F, progress);
    if (!context.layout) return context.report(progress);
    // Ranks: rank 0 reports and decides whether to go on; every rank follows it, so the
    // line searches stay identical.
    std::string go_on(1, context.layout->root() && !context.report(progress) ? '0' : '1');
    context.layout->comm->broadcast(go_on, 0);
    return go_on[0] == '1';
  };
  const MinimizerOptions options = minimizer_options(context.options);
  std::vector<double>& w = scorer->weights();
  const MinimizerResult minimized = minimize(f, w, options, callback);

  if (!best.empty() && (context.dev.size() > 0 || minimized.cancelled)) w = best.weights();
  if (context.dev.size() > 0) record_kept(best, result);
  if (context.layout) {
    result.bytes_sent = objective.bytes_sent();
    result.bytes_received = objective.bytes_received();
  }
  record(minimized, result);
  return scorer;
}

}  // namespace septa::crf
