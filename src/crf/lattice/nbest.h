// The K highest-scoring labellings of a lattice (CRF++'s crf_test -n, Wapiti's label -n).
#pragma once

#include <cstddef>
#include <vector>

#include "crf/lattice/lattice.h"

namespace septa::crf {

struct ScoredPath {
  std::vector<int> labels;  // [T]
  double score = 0.0;       // log-potential (path_score)
};

// The min(K, L^T) best labellings, best first, each exactly once; equal scores are ordered
// deterministically (by labels and ranks), never by memory layout.
std::vector<ScoredPath> nbest(const Lattice& lattice, std::size_t K);

}  // namespace septa::crf
