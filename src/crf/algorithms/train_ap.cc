// -a ap: the averaged perceptron over the CRF's features (Collins 2002, "Discriminative
// training methods for hidden Markov models"), as CRFsuite defines it: the same state and
// transition features as -a lbfgs, one Viterbi decode per sequence, and the averaged weights as
// the model. Sequential by nature (each update needs the previous one), hence the same model
// for any --threads.
#include <algorithm>
#include <numeric>
#include <random>

#include "crf/algorithms/linear_chain_features.h"

namespace septa::crf {

namespace {

// Epochs of -a ap when --max-iterations keeps its (L-BFGS) default: CRFsuite's 100.
constexpr int kDefaultEpochs = 100;

}  // namespace

/*
 * For each sequence x with gold labels y, in a seeded order that changes every epoch:
 *   z = argmax_y' w . Phi(x, y')                (Viterbi)
 *   if z != y:  w += c_x (Phi(x, y) - Phi(x, z))  (c_x the sequence weight)
 * Averaging (Daume's trick): with u += k c_x (Phi(x, y) - Phi(x, z)) at update k (k counts the
 * sequences seen), the average of w over all k steps is w - u / k.
 * Features that do not exist (an (attribute, label) pair or a transition never seen in
 * training) take no update, as in CRFsuite.
 * Stops after --max-iterations epochs (100 when left at its default), or once the fraction of
 * mislabelled items of an epoch is at most --epsilon (CRFsuite's stopping rule for ap).
 */
std::unique_ptr<Scorer> train_ap(const TrainingContext& context, TrainResult& result) {
  const Dataset& data = context.data;
  const std::size_t L = context.encoder.labels().size();
  auto scorer = std::make_unique<LinearChainScorer>(build_linear_chain(context));
  const std::vector<char> mask = transition_mask(context);
  const SparseFeatures& states = scorer->states();
  const std::size_t D = scorer->feature_count(), offset = scorer->transition_offset();
  const int epochs = context.options.max_iterations == TrainOptions{}.max_iterations
                         ? kDefaultEpochs
                         : context.options.max_iterations;

  std::vector<double> w(D, 0.0), u(D, 0.0), averaged(D, 0.0);  // [D] each
  auto update = [&](std::size_t f, double amount, double k) {
    w[f] += amount;
    u[f] += k * amount;
  };
  std::vector<std::size_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(context.options.seed);
  Lattice lattice;
  std::vector<int> guess;
  double k = 1.0;
  BestWeights best;
  result.stop_reason = "max iterations";
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    std::size_t wrong = 0;
    for (std::size_t n : order) {
      const SequenceView s = data.sequence(n);
      if (s.T == 0) continue;
      scorer->fill(s, w.data(), lattice);
      guess.resize(s.T);
      lattice.viterbi(guess.data());
      const double c = s.weight;
      bool differs = false;
      for (std::size_t t = 0; t < s.T; ++t) {
        const int gold = s.labels[t], z = guess[t];
        if (gold == z) continue;
        differs = true;
        ++wrong;
        for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
          const int32_t a = s.attribute_ids[e];
          const double v = c * s.attribute_values[e];
          const int64_t fg = states.find(a, gold), fz = states.find(a, z);
          if (fg >= 0) update(static_cast<std::size_t>(fg), v, k);
          if (fz >= 0) update(static_cast<std::size_t>(fz), -v, k);
        }
      }
      if (differs)
        for (std::size_t t = 1; t < s.T; ++t) {
          const std::size_t qg = s.labels[t - 1] * L + s.labels[t];
          const std::size_t qz = guess[t - 1] * L + guess[t];
          if (qg == qz) continue;
          if (mask[qg]) update(offset + qg, c, k);
          if (mask[qz]) update(offset + qz, -c, k);
        }
      k += 1.0;
    }
    for (std::size_t f = 0; f < D; ++f) averaged[f] = w[f] - u[f] / k;
    result.iterations = epoch;
    const double error_rate = static_cast<double>(wrong) / static_cast<double>(data.items());
    TrainProgress progress;
    progress.phase = "ap";
    progress.iteration = epoch;
    progress.objective = error_rate;  // fraction of mislabelled training items in the epoch
    progress.active_features = static_cast<std::size_t>(
        std::count_if(averaged.begin(), averaged.end(), [](double x) { return x != 0.0; }));
    context.score_dev(
        [&](const SequenceView& sv, Lattice& lat) { scorer->fill(sv, averaged.data(), lat); },
        progress);
    best.offer(averaged.data(), D, progress);
    if (!context.report(progress)) {
      result.cancelled = true;
      result.stop_reason = "cancelled";
      break;
    }
    if (error_rate <= context.options.epsilon) {
      result.stop_reason = "training error at most epsilon";
      break;
    }
  }
  scorer->weights() = context.dev.size() > 0 && !best.empty() ? best.weights() : averaged;
  return scorer;
}

}  // namespace septa::crf
