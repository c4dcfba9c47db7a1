// Stochastic gradient descent for one softmax factor (Bottou 2010, "Large-scale machine
// learning with stochastic gradient descent"; the same scheme as CRFsuite's l2sgd).
#pragma once

#include <string>
#include <vector>

#include "crf/algorithms/local_training.h"

namespace septa::crf {

// Minimises sum_i w_i loss_i(w) + c2 ||w||^2 over `epochs` passes in seeded random order, on
// one thread (so the result never depends on the thread count).
MinimizerResult fit_sgd(const TrainingContext& context, const std::string& phase,
                        const std::vector<LocalInstance>& instances,
                        const SoftmaxModelShape& shape, std::vector<double>& w,
                        SharedProgress& shared);

}  // namespace septa::crf
