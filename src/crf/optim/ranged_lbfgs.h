// L-BFGS (L2) and OWL-QN (L1) whose per-feature state is split by feature range over the ranks
// of a Communicator: each rank keeps only its range of the gradient, the direction and the m
// history pairs; the weights are whole on every rank (the objective reads them all).
#pragma once

#include <functional>
#include <vector>

#include "crf/optim/feature_ranges.h"
#include "crf/optim/minimizer.h"

namespace septa::crf {

// Unregularised objective over ranks: reads all weights w [F], returns f(w) (the same value on
// every rank) and writes this rank's range of g(w) to g [ranges.owned()].
using RangeObjective = std::function<double(const double* w, double* g)>;

// Minimises f(w) + c1 ||w||_1 + c2 ||w||^2 from `w` [F], leaving the result there; every rank
// calls it with the same options and start point. Every scalar it decides on (dot products,
// norms, line-search values) has the same bits on every rank and for every rank count, so the
// iterates do too. `callback` runs on every rank after each iteration.
MinimizerResult minimize_ranged(const RangeObjective& f, std::vector<double>& w,
                                const FeatureRanges& ranges, const MinimizerOptions& options,
                                const IterationCallback& callback);

}  // namespace septa::crf
