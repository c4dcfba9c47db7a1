#include "crf/lattice/cooccurrence.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace septa::crf {

void fill_cooccurrence_lattice(const double* unary, const double* pairwise, std::size_t T,
                               std::size_t L, double floor, Lattice& lattice) {
  lattice.reset(T, L, /*per_position_transitions=*/true);
  for (std::size_t t = 0; t < T; ++t)
    for (std::size_t j = 0; j < L; ++j)
      lattice.state(t)[j] = std::log(std::max(unary[t * L + j], floor));
  thread_local std::vector<double> p, left, right;  // [L][L] pair table, [L] margins
  p.resize(L * L);
  left.resize(L);
  right.resize(L);
  for (std::size_t t = 0; t + 1 < T; ++t) {
    const double* table = &pairwise[t * L * L];
    double total = 0.0;
    for (std::size_t q = 0; q < L * L; ++q) total += p[q] = std::max(table[q], floor);
    std::fill(left.begin(), left.end(), 0.0);
    std::fill(right.begin(), right.end(), 0.0);
    for (std::size_t a = 0; a < L; ++a)
      for (std::size_t b = 0; b < L; ++b) {
        p[a * L + b] /= total;
        left[a] += p[a * L + b];
        right[b] += p[a * L + b];
      }
    // A label that the pairwise factor finds implausible has a tiny margin; dividing a floored
    // entry by it would reward pairs that both factors reject. The unary prediction bounds the
    // margin from below (when the factors agree, as for exact marginals, nothing changes).
    for (std::size_t a = 0; a < L; ++a) left[a] = std::max(left[a], unary[t * L + a]);
    for (std::size_t b = 0; b < L; ++b) right[b] = std::max(right[b], unary[(t + 1) * L + b]);
    // Logs only where needed: most entries are the floor, sharing one value.
    for (std::size_t a = 0; a < L; ++a) left[a] = std::log(left[a]);
    for (std::size_t b = 0; b < L; ++b) right[b] = std::log(right[b]);
    const double log_floor = std::log(floor / total);
    double* cr = lattice.transition(t + 1);
    for (std::size_t a = 0; a < L; ++a)
      for (std::size_t b = 0; b < L; ++b) {
        const double raw = table[a * L + b];
        const double log_p = raw > floor ? std::log(p[a * L + b]) : log_floor;
        cr[a * L + b] = log_p - left[a] - right[b];
      }
  }
}

}  // namespace septa::crf
