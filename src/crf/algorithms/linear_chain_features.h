// The features of a linear-chain CRF built from the training data; shared by standard (L-BFGS)
// and piecewise training.
#pragma once

#include <vector>

#include "crf/algorithms/training_context.h"
#include "crf/scoring/linear_chain.h"

namespace septa::crf {

// A scorer with zero weights over the (attribute, label) state features of the training data
// (observed pairs, or all labels with all_possible_states) and the dense [L][L] transitions.
LinearChainScorer build_linear_chain(const TrainingContext& context);

// [L][L] mask of the transitions that may carry weight: all (all_possible_transitions), or
// those seen in training.
std::vector<char> transition_mask(const TrainingContext& context);

}  // namespace septa::crf
