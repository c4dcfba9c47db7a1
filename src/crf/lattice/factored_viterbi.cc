#include "crf/lattice/factored_viterbi.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace septa::crf {

/*
 * Lattice::viterbi computes, into position t and label b,
 *   delta_t(b) = state_t(b) + max_a (delta_{t-1}(a) + cr_t(a, b)),  ties to the lowest a,
 * each sum a rounded double addition. Off the cells cr_t(a, b) = row(a) - right(b), so up to
 * rounding the a that maximises s(a) = delta_{t-1}(a) + row(a) maximises the sum for every b;
 * a cell's value exceeds its rank-one value (its probability is above the floor). Only the
 * candidates with s(a) >= max_a s(a) - slack, where the slack (1e-9 of the largest magnitude,
 * plus 1e-9) is many orders above the rounding of two or three additions, and the cells of
 * column b can hold the maximum or tie with it; for them the sums are computed as the lattice
 * computes them (delta + (row - right), delta + cell) and compared in ascending a with ties to
 * the lowest a. Per position O(L (1 + candidates) + cells) instead of O(L^2); the candidates
 * are nearly always one label.
 */
bool factored_viterbi(const double* states, std::size_t T, std::size_t L,
                      const FactoredTransitions& transitions, int* labels_out, double* score) {
  if (L == 0 || L > 64) return false;
  if (T == 0) {
    *score = 0.0;
    return true;
  }
  thread_local std::vector<double> delta;      // [T][L] best score ending in (t, b)
  thread_local std::vector<int> back;          // [T][L] its previous label
  thread_local std::vector<double> cell_value;  // [L][L] cr of the position's cells (only they)
  thread_local std::vector<uint64_t> cell_rows;  // [L] bit a of b: (a, b) is a cell
  if (delta.size() < T * L) {
    delta.resize(T * L);
    back.resize(T * L);
  }
  if (cell_value.size() < L * L) cell_value.resize(L * L);
  if (cell_rows.size() < L) cell_rows.resize(L);
  // A sum of every potential is finite only when each one is (a NaN or an infinity stays
  // one); the argument above needs finite values.
  double check = 0.0;
  for (std::size_t q = 0; q < T * L; ++q) check += states[q];
  if (!std::isfinite(check)) return false;
  std::copy(states, states + L, delta.begin());
  for (std::size_t t = 1; t < T; ++t) {
    const double* prev = &delta[(t - 1) * L];
    const double* row = &transitions.row[(t - 1) * L];
    const double* right = &transitions.right[(t - 1) * L];
    const std::size_t c0 = transitions.starts[t - 1], c1 = transitions.starts[t];
    double s_max = -std::numeric_limits<double>::infinity(), magnitude = 0.0;
    for (std::size_t a = 0; a < L; ++a) {
      const double s = prev[a] + row[a];
      s_max = s > s_max ? s : s_max;
      const double size = std::fabs(prev[a]) + std::fabs(row[a]) + std::fabs(right[a]);
      magnitude = size > magnitude ? size : magnitude;
      check += row[a] + right[a];
    }
    std::fill_n(cell_rows.begin(), L, uint64_t{0});
    for (std::size_t i = c0; i < c1; ++i) {
      const std::size_t q = transitions.cells[i], a = q / L, b = q % L;
      cell_rows[b] |= uint64_t{1} << a;
      cell_value[q] = transitions.values[i];
      magnitude = std::max(magnitude, std::fabs(transitions.values[i]));
      check += transitions.values[i];
    }
    if (!std::isfinite(check)) return false;
    const double slack = 1e-9 * (1.0 + 2.0 * magnitude);
    uint64_t candidates = 0;
    for (std::size_t a = 0; a < L; ++a)
      if (prev[a] + row[a] >= s_max - slack) candidates |= uint64_t{1} << a;
    double* best = &delta[t * L];
    int* arg = &back[t * L];
    const double* state = &states[t * L];
    const bool single = (candidates & (candidates - 1)) == 0;
    const auto only = static_cast<std::size_t>(__builtin_ctzll(candidates));
    for (std::size_t b = 0; b < L; ++b) {
      const uint64_t cells = cell_rows[b];
      if (single && cells == 0) {  // the usual case: one candidate, no cell in the column
        best[b] = prev[only] + (row[only] - right[b]) + state[b];
        arg[b] = static_cast<int>(only);
        continue;
      }
      double top = 0.0;
      int top_a = -1;
      for (uint64_t bits = candidates | cells; bits != 0; bits &= bits - 1) {
        const auto a = static_cast<std::size_t>(__builtin_ctzll(bits));
        const double v =
            (cells >> a & 1) ? prev[a] + cell_value[a * L + b] : prev[a] + (row[a] - right[b]);
        if (top_a < 0 || v > top) {
          top = v;
          top_a = static_cast<int>(a);
        }
      }
      best[b] = top + state[b];
      arg[b] = top_a;
    }
  }
  const double* last = &delta[(T - 1) * L];
  int arg = static_cast<int>(std::max_element(last, last + L) - last);
  *score = last[arg];
  for (std::size_t t = T; t-- > 0;) {
    labels_out[t] = arg;
    if (t > 0) arg = back[t * L + arg];
  }
  return true;
}

}  // namespace septa::crf
