#include "crf/algorithms/linear_chain_features.h"

#include "crf/parallel/collective.h"

namespace septa::crf {

namespace {

SparseFeatures build(SparseFeaturesBuilder& builder, std::size_t A, std::size_t K,
                     bool all_classes, const TrainingContext& context) {
  if (context.layout)
    return build_features_across(builder, A, K, context.options.min_freq, all_classes,
                                 *context.layout->comm);
  return builder.build(context.options.min_freq, all_classes);
}

}  // namespace

bool has_conditioned_transitions(const Encoder& encoder) {
  return encoder.format() == InputFormat::kColumns &&
         encoder.feature_template().conditioned_bigram_count() > 0;
}

LinearChainScorer build_linear_chain(const TrainingContext& context) {
  const Dataset& data = context.data;
  const std::size_t A = context.encoder.attributes().size();
  const std::size_t L = context.encoder.labels().size();
  SparseFeaturesBuilder states(A, L);
  for (std::size_t i = 0; i < data.items(); ++i)
    for (std::size_t e = data.item_offsets[i]; e < data.item_offsets[i + 1]; ++e)
      states.add(data.attribute_ids[e], data.labels[i]);
  SparseFeatures state_features =
      build(states, A, L, context.options.all_possible_states, context);
  if (!has_conditioned_transitions(context.encoder))
    return LinearChainScorer(std::move(state_features), L);
  // (edge attribute, label pair) features: the pairs seen on edges carrying the attribute
  // (every pair with all_possible_transitions, as CRF++ does), cut by min_freq.
  SparseFeaturesBuilder edges(A, L * L);
  for (std::size_t n = 0; n < data.size(); ++n) {
    const SequenceView s = data.sequence(n);
    for (std::size_t t = 1; t < s.T; ++t)
      for (std::size_t e = s.edge_offsets[t]; e < s.edge_offsets[t + 1]; ++e)
        edges.add(s.edge_ids[e], s.labels[t - 1] * static_cast<int32_t>(L) + s.labels[t]);
  }
  SparseFeatures edge_features =
      build(edges, A, L * L, context.options.all_possible_transitions, context);
  return LinearChainScorer(std::move(state_features), std::move(edge_features), L);
}

std::vector<char> transition_mask(const TrainingContext& context) {
  const std::size_t L = context.encoder.labels().size();
  // A CRF++ template without a B line: no label-bigram transition weights (CRF++'s meaning).
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

}  // namespace septa::crf
