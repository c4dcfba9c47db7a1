// -a ap: the averaged perceptron over the CRF's features (Collins 2002, "Discriminative
// training methods for hidden Markov models"), as CRFsuite defines it: the same state and
// transition features as -a lbfgs, one Viterbi decode per sequence, and the averaged weights as
// the model. Sequential by nature (each update needs the previous one), hence the same model
// for any --threads. The loop is the online learners' (online_training.cc).
#include "crf/algorithms/online_training.h"

namespace septa::crf {

/*
 * After a mistake:  w += c_x dphi   (c_x the sequence weight; no step size, no margin).
 * Stops after --max-iterations epochs (100 when left at its default), or once the epoch's mean
 * fraction of mislabelled items per sequence is below --epsilon (CRFsuite's rule for ap; 0 when
 * left at its default, so all epochs run: the average keeps converging after the running
 * weights stop erring).
 */
std::unique_ptr<Scorer> train_ap(const TrainingContext& context, TrainResult& result) {
  OnlineRule rule;
  rule.phase = "ap";
  rule.averaged = true;
  rule.stop_on_loss = false;
  rule.update = [](const OnlineMistake& mistake, const OnlineStep& step) {
    for (const auto& [f, v] : mistake.dphi) step(f, mistake.weight * v);
    return mistake.weight * static_cast<double>(mistake.wrong);
  };
  return train_online(context, rule, result);
}

}  // namespace septa::crf
