// -a piecewise: piecewise training (Sutton & McCallum 2005) of the ordinary CRF weights. The
// node pieces (state features, softmax over L per item) and the edge pieces (transition weights,
// softmax over L^2 per adjacent pair) are each locally normalised and trained independently;
// the combined weights are decoded as one linear-chain CRF.
#include "crf/algorithms/linear_chain_features.h"
#include "crf/algorithms/local_training.h"

namespace septa::crf {

std::unique_ptr<Scorer> train_piecewise(const TrainingContext& context, TrainResult& result) {
  const Dataset& data = context.data;
  const std::size_t A = context.encoder.attributes().size();
  const std::size_t L = context.encoder.labels().size();
  auto scorer = std::make_unique<LinearChainScorer>(build_linear_chain(context));
  const std::size_t F = scorer->states().size();

  // Node pieces: the CRF's state features, no bias (the CRF has none).
  const std::vector<LocalInstance> nodes = node_instances(data);
  const SoftmaxModelShape node_shape{&scorer->states(), A, L, 0, nullptr};
  // Edge pieces: one dense row of L^2 transition weights and no observation features, so all
  // edges with the same label pair are the same instance: aggregate them (weight = count) and
  // fit the L^2 weights exactly by L-BFGS.
  std::vector<LocalInstance> edges;
  {
    std::vector<double> pair_weight(L * L, 0.0);  // [L][L] summed sequence weights
    for (std::size_t n = 0; n < data.size(); ++n)
      for (std::size_t i = data.sequence_offsets[n]; i + 1 < data.sequence_offsets[n + 1]; ++i)
        pair_weight[data.labels[i] * L + data.labels[i + 1]] += data.weights[n];
    for (std::size_t q = 0; q < L * L; ++q)
      if (pair_weight[q] > 0.0)
        edges.push_back({0, 0, static_cast<int32_t>(q), 0, static_cast<float>(pair_weight[q])});
  }
  const SparseFeatures no_features{0, L * L, {0}, {}};
  const SoftmaxModelShape edge_shape{&no_features, 0, L * L, 1, nullptr};
  std::vector<double> node_weights(F, 0.0), edge_weights(L * L, 0.0);
  SharedProgress shared;
  const int edge_threads = 1;
  const int node_threads = context.options.threads;  // the edge piece is tiny
  MinimizerResult node_result, edge_result;
  run_both(
      [&] {
        node_result =
            fit_local(context, "nodes", nodes, node_shape, node_threads, node_weights, shared);
      },
      [&] {
        if (!edges.empty())
          edge_result = fit_local_lbfgs(context, "edges", edges, edge_shape, edge_threads,
                                        edge_weights, shared);
      },
      shared, context.options.threads);

  std::vector<double>& w = scorer->weights();
  std::copy(node_weights.begin(), node_weights.end(), w.begin());
  std::copy(edge_weights.begin(), edge_weights.end(), w.begin() + F);
  record_two_parts("nodes", node_result, "edges", edge_result, !edges.empty(), result);
  report_final(context, "piecewise", result.iterations, *scorer);
  return scorer;
}

}  // namespace septa::crf
