#include "crf/objectives/crf_objective.h"

#include <algorithm>

#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {

CrfObjective::CrfObjective(const Dataset& data, const LinearChainScorer& structure, int threads)
    : data_(data), structure_(structure), threads_(std::max(1, threads)) {
  const std::size_t F = structure.feature_count();
  const std::size_t L = structure.labels();
  const SparseFeatures& states = structure.states();
  empirical_.assign(F, 0.0);
  for (std::size_t n = 0; n < data.size(); ++n) {
    const SequenceView s = data.sequence(n);
    for (std::size_t t = 0; t < s.T; ++t) {
      const int32_t y = s.labels[t];
      SEPTA_CHECK(y >= 0 && static_cast<std::size_t>(y) < L);
      for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
        const int64_t f = states.find(s.attribute_ids[e], y);
        if (f >= 0) empirical_[f] += s.weight * s.attribute_values[e];
      }
      if (t > 0) empirical_[structure.transition_offset() + s.labels[t - 1] * L + y] += s.weight;
    }
  }
  block_bounds_ = partition_by_items(data, kBlocks);
  const std::size_t workers = std::min<std::size_t>(threads_, kBlocks);
  partial_.assign(workers, std::vector<double>(F, 0.0));
  lattices_.resize(workers);
  block_log_z_.assign(kBlocks, 0.0);
}

double CrfObjective::evaluate(const double* w, double* grad) {
  const std::size_t F = dimension();
  const std::size_t L = structure_.labels();
  const SparseFeatures& states = structure_.states();
  std::fill(grad, grad + F, 0.0);
  double total_log_z = 0.0;
  auto work = [&](std::size_t block, std::size_t worker) {
    std::vector<double>& g = partial_[worker];
    Lattice& lattice = lattices_[worker];
    std::vector<double> probs(L);
    double log_z = 0.0;
    for (std::size_t n = block_bounds_[block]; n < block_bounds_[block + 1]; ++n) {
      const SequenceView s = data_.sequence(n);
      structure_.fill(s, w, lattice);
      log_z += s.weight * lattice.forward_backward();
      for (std::size_t t = 0; t < s.T; ++t) {
        for (std::size_t j = 0; j < L; ++j) probs[j] = s.weight * lattice.node_marginal(t, j);
        for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e)
          states.add_expectations(s.attribute_ids[e], s.attribute_values[e], probs.data(),
                                  g.data());
      }
      lattice.add_edge_marginal_sums(s.weight, &g[structure_.transition_offset()]);
    }
    block_log_z_[block] = log_z;
  };
  auto commit = [&](std::size_t block, std::size_t worker) {
    std::vector<double>& g = partial_[worker];
    for (std::size_t f = 0; f < F; ++f) {
      grad[f] += g[f];
      g[f] = 0.0;
    }
    total_log_z += block_log_z_[block];
  };
  for_blocks_ordered(kBlocks, threads_, work, commit);

  double observed = 0.0;
  for (std::size_t f = 0; f < F; ++f) {
    observed += w[f] * empirical_[f];
    grad[f] -= empirical_[f];
  }
  return total_log_z - observed;
}

}  // namespace septa::crf
