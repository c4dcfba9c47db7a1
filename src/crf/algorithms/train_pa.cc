// -a pa: passive-aggressive learning over the CRF's features (Crammer, Dekel, Keshet,
// Shalev-Shwartz and Singer 2006, "Online passive-aggressive algorithms", structured form), as
// CRFsuite defines it. The loop is the online learners' (online_training.cc).
#include <algorithm>
#include <cmath>

#include "crf/algorithms/online_training.h"

namespace septa::crf {

/*
 * After a mistake (z != y), with d the number of mislabelled items:
 *   cost  = score(z) - score(y) + (error_sensitive ? sqrt(d) : 1)   = -w.dphi + ...
 *   tau   = cost / |dphi|^2                      (--pa-type 0, PA)
 *         = min(C, cost / |dphi|^2)              (--pa-type 1, PA-I, the default)
 *         = cost / (|dphi|^2 + 1 / (2C))         (--pa-type 2, PA-II)
 *   w    += c_x tau dphi                         (c_x the sequence weight)
 * The model is the average of w over all steps with --averaging (the default). Stops when the
 * epoch's mean cost is below --epsilon (0 by default: never), or after --max-iterations epochs
 * (100 by default).
 */
std::unique_ptr<Scorer> train_pa(const TrainingContext& context, TrainResult& result) {
  const TrainOptions& options = context.options;
  OnlineRule rule;
  rule.phase = "pa";
  rule.averaged = options.averaging;
  rule.stop_on_loss = true;
  rule.update = [&options](const OnlineMistake& mistake, const OnlineStep& step) {
    const double cost =
        -mistake.margin + (options.error_sensitive ? std::sqrt(static_cast<double>(mistake.wrong))
                                                   : 1.0);
    double norm2 = 0.0;
    for (const auto& entry : mistake.dphi) norm2 += entry.second * entry.second;
    if (norm2 <= 0.0) return mistake.weight * cost;  // no existing feature can move
    double tau = cost / norm2;
    if (options.pa_type == 1) tau = std::min(options.c, tau);
    if (options.pa_type == 2) tau = cost / (norm2 + 0.5 / options.c);
    for (const auto& [f, v] : mistake.dphi) step(f, mistake.weight * tau * v);
    return mistake.weight * cost;
  };
  return train_online(context, rule, result);
}

}  // namespace septa::crf
