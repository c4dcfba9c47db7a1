// Standard training: maximum likelihood by L-BFGS (L2) or OWL-QN (L1).
#include <algorithm>
#include <cstdio>
#include <cmath>

#include "crf/objectives/crf_objective.h"
#include "crf/optim/minimizer.h"
#include "crf/algorithms/training_context.h"

namespace septa::crf {

// (attribute, label) state features of the training data, observed or all labels.
LinearChainScorer build_linear_chain(const TrainingContext& context) {
  const Dataset& data = context.data;
  const std::size_t L = context.encoder.labels().size();
  SparseFeaturesBuilder builder(context.encoder.attributes().size(), L);
  for (std::size_t i = 0; i < data.items(); ++i)
    for (std::size_t e = data.item_offsets[i]; e < data.item_offsets[i + 1]; ++e)
      builder.add(data.attribute_ids[e], data.labels[i]);
  if (context.layout)
    return LinearChainScorer(
        build_features_across(builder, context.encoder.attributes().size(), L,
                              context.options.min_freq, context.options.all_possible_states,
                              *context.layout->comm),
        L);
  return LinearChainScorer(
      builder.build(context.options.min_freq, context.options.all_possible_states), L);
}

// [L][L] mask of transitions that may carry weight: all, or those seen in training; none when
// a CRF++ template has no B line (CRF++: no transition features, labels chosen per token).
std::vector<char> transition_mask(const TrainingContext& context) {
  const std::size_t L = context.encoder.labels().size();
  if (!has_transitions(context.encoder)) return std::vector<char>(L * L, 0);
  std::vector<char> mask(L * L, context.options.all_possible_transitions ? 1 : 0);
  const Dataset& data = context.data;
  for (std::size_t n = 0; n < data.size(); ++n) {
    const SequenceView s = data.sequence(n);
    for (std::size_t t = 1; t < s.T; ++t) mask[s.labels[t - 1] * L + s.labels[t]] = 1;
  }
  if (context.layout) allreduce_or(mask, *context.layout->comm);
  return mask;
}

namespace {

// --c2 auto: the regularisation path, strong to weak.
constexpr double kC2Path[] = {10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01};
// Iterations per c2 on the path (each starts from the previous optimum).
constexpr int kPathIterations = 30;

// The dev score that ranks models: F1 when the dev labels have chunks, else accuracy.
double dev_rank(const TrainProgress& p) { return std::isnan(p.dev_f1) ? p.dev_accuracy : p.dev_f1; }

}  // namespace

AlgorithmResult train_lbfgs(const TrainingContext& context) {
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
  std::vector<double>& w = scorer->weights();
  MinimizerOptions options = minimizer_options(context.options);
  AlgorithmResult result;

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
        TrainProgress progress;
        progress.phase = phase;
        progress.iteration = it.iteration;
        progress.objective = it.objective;
        progress.grad_norm = it.grad_norm;
        progress.active_features = it.active;
        return context.report(progress);
      };
      const MinimizerResult stage = minimize(f, w, options, report);
      result.iterations += stage.iterations;
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
        result.stop_reason = "cancelled during the c2 search";
        result.scorer = std::move(scorer);
        return result;
      }
    }
    w = chosen_w;
    options = minimizer_options(context.options);
    options.c2 = result.chosen_c2;
  }

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
  const MinimizerResult minimized = minimize(f, w, options, callback);

  if (!best.empty() && (context.dev.size() > 0 || minimized.cancelled)) w = best.weights();
  if (context.dev.size() > 0) record_kept(best, result);
  result.cancelled = minimized.cancelled;
  result.iterations += minimized.iterations;
  result.stop_reason = minimized.stop_reason;
  result.scorer = std::move(scorer);
  return result;
}

}  // namespace septa::crf
