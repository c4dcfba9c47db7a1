#include "crf/lattice/cooccurrence.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "crf/lattice/fast_exp.h"

namespace septa::crf {

/*
 * With p = max(table, floor) / total and total = sum_q max(table_q, floor), an entry at or
 * below the floor contributes the same floor to every sum. So only the few entries above it
 * (the set S: the pairs the pairwise factor scored, a handful per position under the pair
 * beam) need work of their own:
 *   total  = L^2 floor + sum_{q in S} (table_q - floor)
 *   left_a = (L floor + sum_{(a,b) in S} (table_ab - floor)) / total     (right_b alike)
 *   log CR(a, b) = log p_ab - log max(left_a, P_u(a|t)) - log max(right_b, P_u(b|t+1))
 * where log p_ab = log(floor / total) off S. Cost per position: one scan of the table for S,
 * O(|S|) sums and logs, and the L^2 subtractions that fill the transition matrix.
 */
// (An AVX2 clone for the [L][L] fill; without FMA, so every value is the default clone's.)
SEPTA_AVX2_CLONES void cooccurrence_transitions(const uint32_t* cells, const double* probabilities, std::size_t n,
                              const double* unary_t, const double* unary_next, std::size_t L,
                              double floor, double* cr, const double* log_unary_t,
                              const double* log_unary_next, FactoredTransitions* factored) {
  // Per-thread scratch, grown to the largest L and n seen (no allocation per position).
  struct Scratch {
    std::vector<double> left, right;                // [L] margins
    std::vector<char> listed_left, listed_right;    // [L] label has a cell above the floor
    std::vector<uint32_t> first, second;            // [n] labels of the cells above the floor
    std::vector<double> above;                      // [n] their probabilities
  };
  thread_local Scratch s;
  if (s.left.size() < L) {
    s.left.resize(L);
    s.right.resize(L);
    s.listed_left.resize(L);
    s.listed_right.resize(L);
  }
  if (s.first.size() < n) {
    s.first.resize(n);
    s.second.resize(n);
    s.above.resize(n);
  }
  double* left = s.left.data();
  double* right = s.right.data();
  char* listed_left = s.listed_left.data();
  char* listed_right = s.listed_right.data();
  std::fill_n(left, L, 0.0);
  std::fill_n(right, L, 0.0);
  std::fill_n(listed_left, L, 0);
  std::fill_n(listed_right, L, 0);
  // Cell q = a L + b split by a multiplication (Lemire, Kaser & Kurz 2019, "Faster remainder by
  // direct computation": floor(q / L) = floor(M q / 2^64) with M = floor((2^64 - 1) / L) + 1,
  // exact for every 32-bit q and L); a hardware division per cell cost more than the rest.
  const uint64_t M = UINT64_MAX / L + 1;
  std::size_t m = 0;  // cells above the floor
  double excess = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(probabilities[i] > floor)) continue;
    const double e = probabilities[i] - floor;
    const auto a = static_cast<uint32_t>((static_cast<unsigned __int128>(M) * cells[i]) >> 64);
    const auto b = static_cast<uint32_t>(cells[i] - a * L);
    excess += e;
    left[a] += e;
    right[b] += e;
    listed_left[a] = listed_right[b] = 1;
    s.first[m] = a;
    s.second[m] = b;
    s.above[m++] = probabilities[i];
  }
  const double L_floor = static_cast<double>(L) * floor;
  const double inv_total = 1.0 / (static_cast<double>(L) * L_floor + excess);
  // A label that the pairwise factor finds implausible has a tiny margin; dividing a floored
  // entry by it would reward pairs that both factors reject. The unary prediction bounds the
  // margin from below (when the factors agree, as for exact marginals, nothing changes).
  // A label without a cell above the floor has the margin L floor / total; when its unary
  // probability u >= floor exceeds that, log max(margin, u) = log u is the given state
  // potential log max(u, floor), bit for bit, and costs no logarithm.
  const double bare = L_floor * inv_total;
  const double log_bare = std::log(bare);
  const auto bounded_log = [&](bool listed, double margin, double u, const double* log_u,
                               std::size_t j) {
    if (listed) return std::log(std::max((L_floor + margin) * inv_total, u));
    if (u <= bare) return log_bare;
    return log_u && u >= floor ? log_u[j] : std::log(u);
  };
  for (std::size_t a = 0; a < L; ++a)
    left[a] = bounded_log(listed_left[a], left[a], unary_t[a], log_unary_t, a);
  for (std::size_t b = 0; b < L; ++b)
    right[b] = bounded_log(listed_right[b], right[b], unary_next[b], log_unary_next, b);
  const double log_floor = std::log(floor * inv_total);
  if (factored) {  // the same values, factored (FactoredTransitions)
    const std::size_t at = factored->row.size(), c = factored->cells.size();
    factored->row.resize(at + L);
    factored->right.resize(at + L);
    factored->cells.resize(c + m);
    factored->values.resize(c + m);
    for (std::size_t a = 0; a < L; ++a) {
      factored->row[at + a] = log_floor - left[a];
      factored->right[at + a] = right[a];
    }
    for (std::size_t i = 0; i < m; ++i) {
      const uint32_t a = s.first[i], b = s.second[i];
      factored->cells[c + i] = a * static_cast<uint32_t>(L) + b;
      factored->values[c + i] = std::log(s.above[i] * inv_total) - left[a] - right[b];
    }
    factored->starts.push_back(static_cast<uint32_t>(c + m));
    return;
  }
  for (std::size_t a = 0; a < L; ++a) {
    const double row = log_floor - left[a];
    double* cr_a = cr + a * L;
    for (std::size_t b = 0; b < L; ++b) cr_a[b] = row - right[b];
  }
  for (std::size_t i = 0; i < m; ++i) {
    const uint32_t a = s.first[i], b = s.second[i];
    cr[a * L + b] = std::log(s.above[i] * inv_total) - left[a] - right[b];
  }
}

void cooccurrence_states(const double* unary, std::size_t T, std::size_t L, double floor,
                         Lattice& lattice) {
  lattice.resize(T, L, /*per_position_transitions=*/true);  // every potential is written
  if (T > 0) cooccurrence_state_logs(unary, T, L, floor, lattice.state(0));
}

void cooccurrence_state_logs(const double* unary, std::size_t T, std::size_t L, double floor,
                             double* out) {
  const double log_floor = std::log(floor);
  for (std::size_t q = 0; q < T * L; ++q) out[q] = unary[q] > floor ? std::log(unary[q]) : log_floor;
}

void fill_cooccurrence_lattice(const double* unary, const double* pairwise, std::size_t T,
                               std::size_t L, double floor, Lattice& lattice) {
  cooccurrence_states(unary, T, L, floor, lattice);
  std::vector<uint32_t> cells;     // [|S|] entries above the floor
  std::vector<double> values;      // [|S|] their probabilities
  for (std::size_t t = 0; t + 1 < T; ++t) {
    const double* table = &pairwise[t * L * L];
    cells.clear();
    values.clear();
    for (std::size_t q = 0; q < L * L; ++q)
      if (table[q] > floor) {
        cells.push_back(static_cast<uint32_t>(q));
        values.push_back(table[q]);
      }
    cooccurrence_transitions(cells.data(), values.data(), cells.size(), unary + t * L,
                             unary + (t + 1) * L, L, floor, lattice.transition(t + 1),
                             lattice.state(t), lattice.state(t + 1));
  }
}

}  // namespace septa::crf
