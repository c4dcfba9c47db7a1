// -a separate: CR-F separate training. The unary factor P(y_t|x) and the pairwise factor
// P(y_t, y_{t+1}|x) are maximum-entropy classifiers trained independently, each data-parallel
// over all threads (SGD with iterative parameter mixing over fixed shards, or L-BFGS over fixed
// blocks); no chain inference.
#include "crf/algorithms/local_training.h"
#include "crf/scoring/separate_scorer.h"

namespace septa::crf {

std::unique_ptr<Scorer> train_separate(const TrainingContext& context, TrainResult& result) {
  const Dataset& data = context.data;
  const std::size_t A = context.encoder.attributes().size();
  const std::size_t L = context.encoder.labels().size();
  const TrainOptions& options = context.options;

  const LabelPairs pairs = observed_pairs(data, L);
  const std::vector<LocalInstance> nodes = node_instances(data);
  const std::vector<LocalInstance> edges = edge_instances(data, pairs.pair_class, L);
  auto scorer = std::make_unique<SeparateScorer>(A, L, pairs.first, pairs.second, options.floor);

  // The two factors' features are built concurrently; then each factor trains on all threads
  // (the results do not depend on the thread count).
  SharedProgress shared;
  run_both(
      [&] {
        scorer->set_unary_features(instance_features(data, nodes, A, L, 1, options.min_freq,
                                                     options.all_possible_states));
      },
      [&] {
        scorer->set_pair_features(instance_features(data, edges, A, pairs.first.size(), 2,
                                                    options.min_freq, false));
      },
      shared, options.threads);
  const MinimizerResult unary_result = fit_local(context, "unary", nodes, scorer->unary_shape(),
                                                 options.threads, scorer->unary_weights(), shared);
  MinimizerResult pair_result;
  if (!edges.empty() && !shared.stop)
    pair_result = fit_local(context, "pairwise", edges, scorer->pair_shape(), options.threads,
                            scorer->pair_weights(), shared);
  if (shared.stop) pair_result.cancelled = true;

  record_two_parts("unary", unary_result, "pairwise", pair_result, !edges.empty(), result);
  report_final(context, "separate", result.iterations, *scorer);
  return scorer;
}

}  // namespace septa::crf
