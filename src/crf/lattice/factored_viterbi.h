// Viterbi over transitions given in factored form (FactoredTransitions: rank one plus a few
// cells per position), with the labels and score of Lattice::viterbi over the same potentials.
#pragma once

#include <cstddef>

#include "crf/lattice/cooccurrence.h"

namespace septa::crf {

// The best labelling of a sequence of T items over L <= 64 labels from its state
// log-potentials states [T][L] and transitions (T-1 positions), into labels_out [T]; returns its
// score. The labels, ties included, and the score are those of Lattice::viterbi on the lattice
// holding the same potentials. Returns false, writing nothing, when L > 64 or a potential is
// not finite (the caller then fills a lattice).
bool factored_viterbi(const double* states, std::size_t T, std::size_t L,
                      const FactoredTransitions& transitions, int* labels_out, double* score);

}  // namespace septa::crf
