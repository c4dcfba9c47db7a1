// Small random datasets and helpers shared by the CRF tests.
#pragma once

#include <random>
#include <vector>

#include "crf/features/dataset.h"

namespace septa::crf::testing {

// N sequences of length 1..max_T over A attributes (1..3 per item, values in [0.5, 1.5]) and
// L labels.
inline Dataset random_dataset(std::size_t N, std::size_t max_T, std::size_t A, std::size_t L,
                              unsigned seed) {
  std::mt19937 rng(seed);
  Dataset data;
  for (std::size_t n = 0; n < N; ++n) {
    const std::size_t T = 1 + rng() % max_T;
    for (std::size_t t = 0; t < T; ++t) {
      const std::size_t k = 1 + rng() % 3;
      for (std::size_t e = 0; e < k; ++e)
        data.add_attribute(static_cast<int32_t>(rng() % A),
                           0.5f + static_cast<float>(rng() % 1000) / 1000.0f);
      data.end_item(static_cast<int32_t>(rng() % L));
    }
    data.end_sequence(0.5 + (rng() % 4) * 0.5);
  }
  return data;
}

// Random weights in [-scale, scale].
inline std::vector<double> random_weights(std::size_t F, double scale, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-scale, scale);
  std::vector<double> w(F);
  for (double& x : w) x = u(rng);
  return w;
}

// Sequences [n0, n1) of `data` as a dataset of their own, every value 1 (column data), edge
// attributes included.
inline Dataset unit_slice(const Dataset& data, std::size_t n0, std::size_t n1) {
  Dataset out;
  out.unit_values = true;
  for (std::size_t n = n0; n < n1; ++n) {
    for (std::size_t i = data.sequence_offsets[n]; i < data.sequence_offsets[n + 1]; ++i) {
      for (std::size_t e = data.item_offsets[i]; e < data.item_offsets[i + 1]; ++e)
        out.add_attribute(data.attribute_ids[e], 1.0f);
      for (std::size_t e = data.edge_offsets[i]; e < data.edge_offsets[i + 1]; ++e)
        out.add_edge_attribute(data.edge_ids[e]);
      out.end_item(data.labels[i]);
    }
    out.end_sequence(data.weights[n]);
  }
  return out;
}

}  // namespace septa::crf::testing
