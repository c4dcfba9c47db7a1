// -a separate-counts: the CR-F factors from counts (see count_scorer.h); one pass over the data.
#include <cmath>

#include "crf/scoring/count_scorer.h"
#include "crf/algorithms/local_training.h"

namespace septa::crf {
namespace {

// Features seen in `instances`, with r(a,k) = log(c(a,k) + beta P(k)) - log(beta P(k)) and the
// class log prior.
SparseFeatures count_features(const Dataset& data, const std::vector<LocalInstance>& instances,
                              std::size_t A, std::size_t K, int max_span, int min_freq,
                              std::vector<double>& ratio, std::vector<double>& log_prior) {
  SparseFeaturesBuilder builder(A * max_span, K);
  std::vector<double> class_count(K, 0.0);
  for (const LocalInstance& instance : instances) {
    class_count[instance.gold] += 1.0;
    for (int32_t k = 0; k < instance.span; ++k) {
      const std::size_t item = instance.item + k;
      for (std::size_t e = data.item_offsets[item]; e < data.item_offsets[item + 1]; ++e)
        builder.add(data.attribute_ids[e] + static_cast<int32_t>(k * A), instance.gold);
    }
  }
  std::vector<uint32_t> counts;
  SparseFeatures features = builder.build(min_freq, false, &counts);
  log_prior.resize(K);
  for (std::size_t k = 0; k < K; ++k)
    log_prior[k] = std::log(class_count[k] / static_cast<double>(instances.size()));
  ratio.resize(features.size());
  for (std::size_t f = 0; f < features.size(); ++f) {
    const double backoff = CountScorer::kBeta * std::exp(log_prior[features.classes[f]]);
    ratio[f] = std::log(counts[f] + backoff) - std::log(backoff);
  }
  return features;
}

}  // namespace

std::unique_ptr<Scorer> train_separate_counts(const TrainingContext& context,
                                              TrainResult& result) {
  const Dataset& data = context.data;
  const std::size_t A = context.encoder.attributes().size();
  const std::size_t L = context.encoder.labels().size();
  const LabelPairs pairs = observed_pairs(data, L);
  std::vector<double> unary_ratio, label_prior, pair_ratio, pair_prior;
  SparseFeatures unary = count_features(data, node_instances(data), A, L, 1,
                                        context.options.min_freq, unary_ratio, label_prior);
  const std::vector<LocalInstance> edges = edge_instances(data, pairs.pair_class, L);
  SparseFeatures pairwise = count_features(data, edges, A, pairs.first.size(), 2,
                                           context.options.min_freq, pair_ratio, pair_prior);
  auto scorer = std::make_unique<CountScorer>(
      A, L, std::move(unary), std::move(unary_ratio), std::move(label_prior), std::move(pairwise),
      std::move(pair_ratio), std::move(pair_prior), pairs.first, pairs.second,
      context.options.floor);
  TrainProgress progress;
  progress.phase = "counts";
  progress.iteration = 1;
  progress.active_features = scorer->feature_count();
  context.score_dev([&](const SequenceView& s, Lattice& lattice) { scorer->potentials(s, lattice); },
                    progress);
  result.cancelled = !context.report(progress);
  result.iterations = 1;
  result.stop_reason = "counted";
  return scorer;
}

}  // namespace septa::crf
