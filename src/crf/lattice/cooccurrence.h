// Co-occurrence rate factorisation (CR-F) of a linear chain (Zhu et al. 2012):
//   P(y|x) = prod_t P(y_t|x) * prod_t CR(y_t; y_{t+1} | x),
//   CR(a; b | x) = P(y_t=a, y_{t+1}=b | x) / (m_L(a) m_R(b))
// with m_L, m_R the margins of the pairwise factor itself (as in the authors' code), each
// bounded below by the unary prediction of the same label (see cooccurrence.cc).
#pragma once

#include <cstddef>

#include "crf/lattice/lattice.h"

namespace septa::crf {

// Fills `lattice` (reset inside, per-position transitions) with the log-potentials of the CR
// factorisation from unary probabilities [T][L] and pairwise probabilities [T-1][L][L] (any
// non-negative values; each pairwise table is renormalised). Probabilities below `floor` are
// raised to it first, so no potential is log(0).
void fill_cooccurrence_lattice(const double* unary, const double* pairwise, std::size_t T,
                               std::size_t L, double floor, Lattice& lattice);

}  // namespace septa::crf
