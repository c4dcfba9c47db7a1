// -a arow: adaptive regularisation of weight vectors over the CRF's features (Crammer,
// Kulesza and Dredze 2009, "Adaptive regularization of weight vectors"), with the diagonal
// covariance CRFsuite uses. The loop is the online learners' (online_training.cc).
#include <memory>
#include <vector>

#include "crf/algorithms/online_training.h"

namespace septa::crf {

/*
 * Each weight f has a variance sigma_f, initially --variance. After a mistake, with d the
 * number of mislabelled items:
 *   cost    = score(z) - score(y) + d                    = -w.dphi + d
 *   beta    = 1 / (sum_f sigma_f dphi_f^2 + gamma)       (--gamma)
 *   alpha   = cost * beta
 *   w_f    += c_x alpha sigma_f dphi_f                   (c_x the sequence weight)
 *   sigma_f -= beta (sigma_f dphi_f)^2
 * Confident (low-variance) weights move little. The model is the last w (no averaging).
 * Stops when the epoch's mean cost is below --epsilon (0 by default: never), or after
 * --max-iterations epochs (100 by default).
 */
std::unique_ptr<Scorer> train_arow(const TrainingContext& context, TrainResult& result) {
  const TrainOptions& options = context.options;
  auto sigma = std::make_shared<std::vector<double>>();  // [D] per-weight variances
  OnlineRule rule;
  rule.phase = "arow";
  rule.averaged = false;
  rule.stop_on_loss = true;
  rule.start = [sigma, &options](std::size_t D) { sigma->assign(D, options.variance); };
  rule.update = [sigma, &options](const OnlineMistake& mistake, const OnlineStep& step) {
    std::vector<double>& s = *sigma;
    const double cost = -mistake.margin + static_cast<double>(mistake.wrong);
    double confidence = 0.0;
    for (const auto& [f, v] : mistake.dphi) confidence += s[f] * v * v;
    const double beta = 1.0 / (confidence + options.gamma);
    const double alpha = cost * beta;
    for (const auto& [f, v] : mistake.dphi) {
      step(f, mistake.weight * alpha * s[f] * v);
      s[f] -= beta * (s[f] * v) * (s[f] * v);
    }
    return mistake.weight * cost;
  };
  return train_online(context, rule, result);
}

}  // namespace septa::crf
