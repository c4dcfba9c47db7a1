// The online learners of CRFsuite (ap, pa, arow) share one loop: decode each training sequence
// with the current weights, and when the best labelling z differs from the gold y, move the
// weights along dphi = Phi(x, y) - Phi(x, z). Only the move differs; it is the rule below.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "crf/algorithms/training_context.h"

namespace septa::crf {

// One mislabelled sequence, as a rule sees it.
struct OnlineMistake {
  const std::vector<std::pair<std::size_t, double>>& dphi;  // [nnz] (feature, value), f unique
  double margin;       // w . dphi = score(y) - score(z) <= 0
  std::size_t wrong;   // mislabelled items of the sequence (>= 1)
  double weight;       // the sequence weight
};

// Applies `amount` to weight f (the loop keeps the average when the rule asks for it).
using OnlineStep = std::function<void(std::size_t f, double amount)>;

struct OnlineRule {
  std::string phase;       // progress and model name: "ap", "pa", "arow"
  bool averaged = true;    // the model is the average of the weights over all steps
  // Stop when the epoch's error rate (ap) or mean loss (pa, arow) is at most --epsilon.
  bool stop_on_loss = false;
  // Called once per training run with the feature count D (per-feature state such as AROW's
  // variances is sized here).
  std::function<void(std::size_t D)> start;
  // Moves the weights after a mistake through `step`; returns the sequence's loss.
  std::function<double(const OnlineMistake& mistake, const OnlineStep& step)> update;
};

// Runs `rule` over the CRF's features (those of -a lbfgs); --max-iterations epochs (100 when
// left at its L-BFGS default, as in CRFsuite), in a seeded order that changes every epoch.
std::unique_ptr<Scorer> train_online(const TrainingContext& context, const OnlineRule& rule,
                                     TrainResult& result);

}  // namespace septa::crf
