#include "crf/algorithms/linear_chain_features.h"

#include "crf/parallel/collective.h"

namespace septa::crf {

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

std::vector<char> transition_mask(const TrainingContext& context) {
  const std::size_t L = context.encoder.labels().size();
  // A CRF++ template without a B line: no transition features (CRF++'s meaning).
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
