// Co-occurrence rate factorisation (CR-F) of a linear chain (Zhu et al. 2012):
//   P(y|x) = prod_t P(y_t|x) * prod_t CR(y_t; y_{t+1} | x),
//   CR(a; b | x) = P(y_t=a, y_{t+1}=b | x) / (m_L(a) m_R(b))
// with m_L, m_R the margins of the pairwise factor itself (as in the authors' code), each
// bounded below by the unary prediction of the same label (see cooccurrence.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "crf/lattice/lattice.h"

namespace septa::crf {

/*
 * The transition log-potentials of a sequence in the factored form that cooccurrence_transitions
 * computes them in: into position t (1 <= t < T), cr_t(a, b) = row[t-1][a] - right[t-1][b] off
 * the listed cells, the cell's own value on a listed cell. The same doubles the [L][L] matrix
 * would hold, bit for bit, at O(L + cells) per position instead of O(L^2).
 */
struct FactoredTransitions {
  std::size_t L = 0;
  std::vector<double> row;         // [T-1][L] log(floor / total) - log left margin of a
  std::vector<double> right;       // [T-1][L] log right margin of b
  std::vector<uint32_t> starts;    // [T] cells of position t: [starts[t-1], starts[t])
  std::vector<uint32_t> cells;     // [cells] a L + b
  std::vector<double> values;      // [cells] cr(a, b)
  // Empties it for a sequence over L labels (capacity kept).
  void reset(std::size_t labels) {
    L = labels;
    row.clear();
    right.clear();
    starts.assign(1, 0);
    cells.clear();
    values.clear();
  }
};

// Fills `lattice` (reset inside, per-position transitions) with the log-potentials of the CR
// factorisation from unary probabilities [T][L] and pairwise probabilities [T-1][L][L] (any
// non-negative values; each pairwise table is renormalised). Probabilities below `floor` are
// raised to it first, so no potential is log(0).
void fill_cooccurrence_lattice(const double* unary, const double* pairwise, std::size_t T,
                               std::size_t L, double floor, Lattice& lattice);

// The same in two steps, for pairwise factors that score a few label pairs per position:
// resizes `lattice` (per-position transitions, left unset: the caller fills every position with
// cooccurrence_transitions) and fills its state log-potentials log max(P(y_t|x), floor) from
// unary [T][L];
void cooccurrence_states(const double* unary, std::size_t T, std::size_t L, double floor,
                         Lattice& lattice);
// The same state log-potentials into out [T][L].
void cooccurrence_state_logs(const double* unary, std::size_t T, std::size_t L, double floor,
                             double* out);
// then, per position, the transition log-potentials cr [L][L] into t+1 from the pairwise table
// given sparsely: probabilities[i] [n] of cells[i] = a L + b (each cell listed at most once;
// unlisted cells are 0, i.e. at the floor), and the unary probabilities at t and t+1 ([L]
// each). log_unary_t and log_unary_next ([L] each, optional) are the state potentials of t
// and t+1 as cooccurrence_states wrote them; given, they spare the logarithms of the labels
// without a cell above the floor. Work O(n + L^2) with O(n) logarithms. With `factored`, the
// position's potentials are appended to it instead (cr unused, may be null): O(n + L).
void cooccurrence_transitions(const uint32_t* cells, const double* probabilities, std::size_t n,
                              const double* unary_t, const double* unary_next, std::size_t L,
                              double floor, double* cr, const double* log_unary_t = nullptr,
                              const double* log_unary_next = nullptr,
                              FactoredTransitions* factored = nullptr);

}  // namespace septa::crf
