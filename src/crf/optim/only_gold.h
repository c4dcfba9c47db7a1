// Instances whose loss and gradient are exactly 0 whatever the weights (skipped by the SGD
// kernels and by the step search).
#ifndef SEPTA_CRF_OPTIM_ONLY_GOLD_H_
#define SEPTA_CRF_OPTIM_ONLY_GOLD_H_

#include <cstddef>

#include "crf/objectives/softmax_objective.h"

namespace septa::crf {

// Whether the instance normalises over a list of one class, its gold class (e.g. an edge whose
// unary beam leaves one label pair): its softmax gives that class exactly 1 (fast_exp(0) / 1)
// whatever the weights, its loss is exactly 0 and its gradient exactly 0.
inline bool only_gold(const SoftmaxModelShape& shape, const LocalInstance& instance) {
  if (!shape.candidates || instance.candidates < 0 || shape.mask) return false;
  const CandidateLists& lists = *shape.candidates;
  const std::size_t c = static_cast<std::size_t>(instance.candidates);
  return lists.offsets[c + 1] - lists.offsets[c] == 1 &&
         lists.classes[lists.offsets[c]] == instance.gold;
}

}  // namespace septa::crf

#endif  // SEPTA_CRF_OPTIM_ONLY_GOLD_H_
