// Standard training: maximum likelihood by L-BFGS (L2) or OWL-QN (L1).
#include <algorithm>
#include <cstdio>
#include <cmath>

#include "crf/algorithms/linear_chain_features.h"
#include "crf/objectives/crf_objective.h"
#include "crf/optim/minimizer.h"
#include "crf/optim/ranged_lbfgs.h"
#include "crf/parallel/keep_buffers.h"
#include "septa/error.h"

namespace septa::crf {

namespace {

// --c2 auto: the regularisation path, strong to weak.
constexpr double kC2Path[] = {10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01};
// Iterations per c2 on the path (each starts from the previous optimum).
constexpr int kPathIterations = 30;

// The dev score that ranks models: F1 when the dev labels have chunks, else accuracy.
double dev_rank(const TrainProgress& p) { return std::isnan(p.dev_f1) ? p.dev_accuracy : p.dev_f1; }

}  // namespace

std::unique_ptr<Scorer> train_lbfgs(const TrainingContext& context, TrainResult& result) {
  auto scorer = std::make_unique<LinearChainScorer>(build_linear_chain(context));
  const std::vector<char> mask = transition_mask(context);
  const std::size_t F = scorer->feature_count();
  const std::size_t offset = scorer->transition_offset();
  CrfObjective objective(context.data, *scorer, context.options.threads, context.layout);
  release_free_memory();  // the set-up's temporaries, before the optimiser's history grows

  // The optimiser keeps only this rank's feature range of every per-feature vector but the
  // weights (FeatureRanges; one range in one process).
  const FeatureRanges& ranges = objective.ranges();
  SEPTA_CHECK(ranges.lo() == objective.owned_begin() && ranges.hi() == objective.owned_end());
  RangeObjective f = [&](const double* w, double* g) {
    const double value = objective.evaluate_owned(w, g);
    for (std::size_t q = 0; q < mask.size(); ++q)
      if (!mask[q] && offset + q >= ranges.lo() && offset + q < ranges.hi())
        g[offset + q - ranges.lo()] = 0.0;
    return value;
  };
  std::vector<double>& w = scorer->weights();
  MinimizerOptions options = minimizer_options(context.options);
  int search_iterations = 0;

  /*
   * --c2 auto: for c2 = 10, 3, 1, 0.3, 0.1, 0.03, 0.01 minimise at most 30 iterations, each
   * starting from the previous c2's weights (warm start along the regularisation path: a
   * weaker penalty's optimum lies near the stronger one's), and score the dev data at the end
   * of each; the c2 with the best dev score (the same metric as BestWeights) is then trained to
   * convergence from its own weights. Costs about 7 x 30 iterations more than one c2.
   */
  if (context.options.c2_auto) {
    std::vector<double> chosen_w = w;
    double chosen_score = -1.0;
    for (const double c2 : kC2Path) {
      char phase[32];
      std::snprintf(phase, sizeof phase, "c2=%g", c2);
      options.c2 = c2;
      options.max_iterations = std::min(kPathIterations, context.options.max_iterations);
      IterationCallback report = [&](const MinimizerIteration& it) {
        TrainProgress progress = iteration_progress(phase, it);
        return context.report(progress);
      };
      const MinimizerResult stage = minimize_ranged(f, w, ranges, options, report);
      search_iterations += stage.iterations;
      TrainProgress scored;
      scored.phase = phase;
      scored.iteration = stage.iterations;
      context.score_dev(
          [&](const SequenceView& s, Lattice& lattice) { scorer->fill(s, w.data(), lattice); },
          scored);
      if (dev_rank(scored) > chosen_score) {
        chosen_score = dev_rank(scored);
        chosen_w = w;
        result.chosen_c2 = c2;
      }
      if (stage.cancelled) {
        w = chosen_w;
        result.cancelled = true;
        result.iterations = search_iterations;
        result.stop_reason = "cancelled during the c2 search";
        return scorer;
      }
    }
    w = chosen_w;
    options = minimizer_options(context.options);
    options.c2 = result.chosen_c2;
  }

  BestWeights best;
  IterationCallback callback = [&](const MinimizerIteration& it) {
    TrainProgress progress = iteration_progress("lbfgs", it);
    context.score_dev([&](const SequenceView& s, Lattice& lattice) { scorer->fill(s, it.w, lattice); },
                      progress);
    // Without dev data the latest weights are the best, and minimize_ranged leaves them in w
    // when it stops (also when cancelled): no copy to keep.
    if (context.dev.size() > 0) best.offer(it.w, F, progress);
    if (!context.layout) return context.report(progress);
    // Ranks: rank 0 reports and decides whether to go on; every rank follows it, so the
    // line searches stay identical.
    std::string go_on(1, context.layout->root() && !context.report(progress) ? '0' : '1');
    context.layout->comm->broadcast(go_on, 0);
    return go_on[0] == '1';
  };
  MinimizerResult minimized;
  {
    const KeepRoundBuffers keep_buffers(context.layout && context.layout->comm->size() > 1);
    minimized = minimize_ranged(f, w, ranges, options, callback);
  }

  if (!best.empty() && (context.dev.size() > 0 || minimized.cancelled)) w = best.weights();
  if (context.dev.size() > 0) record_kept(best, result);
  if (context.layout) {
    result.bytes_sent = objective.bytes_sent();
    result.bytes_received = objective.bytes_received();
  }
  record(minimized, result);
  result.iterations += search_iterations;
  return scorer;
}

}  // namespace septa::crf
