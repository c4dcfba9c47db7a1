// -a memm: the maximum-entropy Markov model baseline, one softmax per item given the previous
// gold label (no chain inference in training).
#include "crf/algorithms/local_training.h"
#include "crf/scoring/memm_scorer.h"

namespace septa::crf {

std::unique_ptr<Scorer> train_memm(const TrainingContext& context, TrainResult& result) {
  const Dataset& data = context.data;
  const std::size_t A = context.encoder.attributes().size();
  const std::size_t L = context.encoder.labels().size();
  std::vector<LocalInstance> instances = node_instances(data);
  std::vector<char> successors((L + 1) * L, 0);
  for (std::size_t n = 0; n < data.size(); ++n)
    for (std::size_t i = data.sequence_offsets[n]; i < data.sequence_offsets[n + 1]; ++i) {
      const int32_t previous =
          i == data.sequence_offsets[n] ? static_cast<int32_t>(L) : data.labels[i - 1];
      instances[i].context = previous;
      successors[previous * L + data.labels[i]] = 1;
    }
  auto scorer = std::make_unique<MemmScorer>(
      A, L,
      instance_features(data, instances, A, L, 1, context.options.min_freq,
                        context.options.all_possible_states, context.options.threads),
      std::move(successors), context.options.floor);
  SharedProgress shared;
  const MinimizerResult fitted = fit_local(context, "memm", instances, scorer->shape(),
                                           context.options.threads, scorer->weights(), shared);
  record(fitted, result);
  report_final(context, "memm", result.iterations, *scorer);
  return scorer;
}

}  // namespace septa::crf
