// The features of a linear-chain CRF built from the training data; shared by standard (L-BFGS)
// and piecewise training.
#pragma once

#include <vector>

#include "crf/algorithms/training_context.h"
#include "crf/scoring/linear_chain.h"

namespace septa::crf {

// A scorer with zero weights over the (attribute, label) state features of the training data
// (observed pairs, or all labels with all_possible_states), the dense [L][L] transitions and,
// with observation-conditioned B templates, the (edge attribute, label pair) features (observed
// pairs, or all pairs with all_possible_transitions).
LinearChainScorer build_linear_chain(const TrainingContext& context);

// Whether the encoder's template has observation-conditioned B lines ("B01:%x[0,0]").
bool has_conditioned_transitions(const Encoder& encoder);

// [L][L] mask of the transitions that may carry weight: all (all_possible_transitions), or
// those seen in training.
std::vector<char> transition_mask(const TrainingContext& context);

}  // namespace septa::crf
