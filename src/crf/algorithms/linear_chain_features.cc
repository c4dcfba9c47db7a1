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

/*
 * The (attribute, label) state features of the data: SparseFeaturesBuilder's result from the
 * same occurrences, bucketed by attribute straight from the dataset (the builder's two
 * occurrence lists cost 8 bytes per attribute entry beside the buckets: CoNLL-2003 NER, 4.7 M
 * entries, raised the peak resident memory by about 55 MB, this by about 22 MB).
 */
SparseFeatures build_states(const TrainingContext& context, std::size_t A, std::size_t L) {
  const Dataset& data = context.data;
  std::vector<std::size_t> start(A + 1, 0);  // [A+1] bucket boundaries
  for (std::size_t e = data.item_offsets.front(); e < data.item_offsets.back(); ++e)
    ++start[data.attribute_ids[e] + 1];
  for (std::size_t a = 0; a < A; ++a) start[a + 1] += start[a];
  std::vector<int32_t> bucketed(start[A]);  // [entries] labels grouped by attribute
  {
    std::vector<std::size_t> next(start.begin(), start.end() - 1);  // [A]
    for (std::size_t i = 0; i < data.items(); ++i)
      for (std::size_t e = data.item_offsets[i]; e < data.item_offsets[i + 1]; ++e)
        bucketed[next[data.attribute_ids[e]]++] = data.labels[i];
  }
  if (!context.layout)
    return features_from_buckets(A, L, start, bucketed, context.options.min_freq,
                                 context.options.all_possible_states);
  std::vector<uint32_t> counts;
  SparseFeatures local = features_from_buckets(A, L, start, bucketed, 1, false, &counts);
  std::vector<int32_t>().swap(bucketed);
  return merge_features_across(std::move(local), std::move(counts), A, L,
                               context.options.min_freq, context.options.all_possible_states,
                               *context.layout->comm);
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
  SparseFeatures state_features = build_states(context, A, L);
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
