// -a separate: CR-F separate training. The unary factor P(y_t|x) and the pairwise factor
// P(y_t, y_{t+1}|x) are maximum-entropy classifiers trained independently and concurrently
// (one thread each; with --local-optimizer lbfgs each is also data-parallel over the threads
// that remain, while SGD, the default, runs each on one thread); no chain inference.
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

  // Split the threads between the factors; the results do not depend on the split.
  const int pair_threads = std::max(1, options.threads / 2);
  const int unary_threads = std::max(1, options.threads - pair_threads);
  SharedProgress shared;
  MinimizerResult pair_result, unary_result;
  run_both(
      [&] {
        scorer->set_unary_features(instance_features(data, nodes, A, L, 1, options.min_freq,
                                                     options.all_possible_states));
        unary_result = fit_local(context, "unary", nodes, scorer->unary_shape(), unary_threads,
                                 scorer->unary_weights(), shared);
      },
      [&] {
        scorer->set_pair_features(instance_features(data, edges, A, pairs.first.size(), 2,
                                                    options.min_freq, false));
        if (!edges.empty())
          pair_result = fit_local(context, "pairwise", edges, scorer->pair_shape(), pair_threads,
                                  scorer->pair_weights(), shared);
      },
      shared);

  record_two_parts("unary", unary_result, "pairwise", pair_result, !edges.empty(), result);
  report_final(context, "separate", result.iterations, *scorer);
  return scorer;
}

}  // namespace septa::crf
