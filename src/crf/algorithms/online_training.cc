#include "crf/algorithms/online_training.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "crf/algorithms/linear_chain_features.h"
#include "crf/scoring/linear_chain.h"

namespace septa::crf {


namespace {

// Epochs when --max-iterations keeps its (L-BFGS) default: CRFsuite's 100.
constexpr int kDefaultEpochs = 100;
// --epsilon when it keeps its (L-BFGS) default: CRFsuite's 0, so that by default every epoch
// runs. The test is strict (objective < epsilon), as CRFsuite's: stopping at the first epoch
// without mistakes would return an average still dominated by the early, wrong weights.
constexpr double kDefaultEpsilon = 0.0;

// Collects c * (Phi(x, y) - Phi(x, z)) summed per feature.
class FeatureDifference {
 public:
  explicit FeatureDifference(std::size_t D) : dense_(D, 0.0) {}
  void add(std::size_t f, double v) {
    if (dense_[f] == 0.0) touched_.push_back(f);
    dense_[f] += v;
  }
  // The non-zero entries in order of first touch (deterministic); resets the collector.
  const std::vector<std::pair<std::size_t, double>>& collect() {
    entries_.clear();
    for (std::size_t f : touched_) {
      if (dense_[f] != 0.0) entries_.emplace_back(f, dense_[f]);
      dense_[f] = 0.0;
    }
    touched_.clear();
    return entries_;
  }

 private:
  std::vector<double> dense_;    // [D] scratch, zero between sequences
  std::vector<std::size_t> touched_;
  std::vector<std::pair<std::size_t, double>> entries_;
};

}  // namespace

/*
 * For each sequence x with gold labels y, in a seeded order that changes every epoch:
 *   z = argmax_y' w . Phi(x, y')                          (Viterbi)
 *   if z != y:  dphi = Phi(x, y) - Phi(x, z);  rule moves w given dphi and w . dphi
 * Features that do not exist (an (attribute, label) pair or a transition never seen in
 * training) are left out of dphi, as in CRFsuite.
 * Averaging (Daume's trick): with u += k * step at the k-th sequence visited (k = 1, 2, ...,
 * counting every visit, mistake or not, empty sequences included), the model after K visits is
 *   w - u / (K + 1) = (1 / (K + 1)) sum_{j=0..K} w_j,
 * the mean of the weights w_0 = 0, w_1, ..., w_K after each visit (CRFsuite's convention).
 * Epoch objective: ap, the mean over sequences of the fraction of their items mislabelled
 * (CRFsuite's ap loss / N); pa and arow, the mean loss per sequence. Training stops when it is
 * below --epsilon (strictly; 0 by default, so every epoch runs) or after the last epoch.
 */
std::unique_ptr<Scorer> train_online(const TrainingContext& context, const OnlineRule& rule,
                                     TrainResult& result) {
  const Dataset& data = context.data;
  const std::size_t L = context.encoder.labels().size();
  auto scorer = std::make_unique<LinearChainScorer>(build_linear_chain(context));
  const std::vector<char> mask = transition_mask(context);
  const SparseFeatures& states = scorer->states();
  const SparseFeatures& edges = scorer->edges();
  const std::size_t D = scorer->feature_count(), offset = scorer->transition_offset();
  const std::size_t edge_offset = scorer->edge_offset();
  const int epochs = context.options.max_iterations == TrainOptions{}.max_iterations
                         ? kDefaultEpochs
                         : context.options.max_iterations;
  const double epsilon = context.options.epsilon == TrainOptions{}.epsilon
                             ? kDefaultEpsilon
                             : context.options.epsilon;
  if (rule.start) rule.start(D);

  std::vector<double> w(D, 0.0), u(D, 0.0), model(D, 0.0);  // [D] each
  double k = 1.0;
  const OnlineStep step = [&](std::size_t f, double amount) {
    w[f] += amount;
    u[f] += k * amount;
  };
  FeatureDifference difference(D);
  std::vector<std::size_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(context.options.seed);
  Lattice lattice;
  std::vector<int> guess;
  BestWeights best;
  result.stop_reason = "max iterations";
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    double error_fraction = 0.0;  // sum over sequences of mislabelled items / T
    double loss = 0.0;
    for (std::size_t n : order) {
      const SequenceView s = data.sequence(n);
      if (s.T == 0) {
        k += 1.0;
        continue;
      }
      scorer->fill(s, w.data(), lattice);
      guess.resize(s.T);
      lattice.viterbi(guess.data());
      std::size_t wrong = 0;
      for (std::size_t t = 0; t < s.T; ++t) {
        const int gold = s.labels[t], z = guess[t];
        if (gold == z) continue;
        ++wrong;
        for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
          const int32_t a = s.attribute_ids[e];
          const double v = s.attribute_values[e];
          const int64_t fg = states.find(a, gold), fz = states.find(a, z);
          if (fg >= 0) difference.add(static_cast<std::size_t>(fg), v);
          if (fz >= 0) difference.add(static_cast<std::size_t>(fz), -v);
        }
      }
      if (wrong > 0) {
        for (std::size_t t = 1; t < s.T; ++t) {
          const std::size_t qg = s.labels[t - 1] * L + s.labels[t];
          const std::size_t qz = guess[t - 1] * L + guess[t];
          if (qg == qz) continue;
          if (mask[qg]) difference.add(offset + qg, 1.0);
          if (mask[qz]) difference.add(offset + qz, -1.0);
          for (std::size_t e = s.edge_offsets[t]; e < s.edge_offsets[t + 1]; ++e) {
            const int32_t b = s.edge_ids[e];
            const int64_t fg = edges.find(b, static_cast<int32_t>(qg));
            const int64_t fz = edges.find(b, static_cast<int32_t>(qz));
            if (fg >= 0) difference.add(edge_offset + static_cast<std::size_t>(fg), 1.0);
            if (fz >= 0) difference.add(edge_offset + static_cast<std::size_t>(fz), -1.0);
          }
        }
        const auto& dphi = difference.collect();
        double margin = 0.0;
        for (const auto& [f, v] : dphi) margin += w[f] * v;
        loss += rule.update(OnlineMistake{dphi, margin, wrong, s.weight}, step);
        error_fraction += static_cast<double>(wrong) / static_cast<double>(s.T);
      }
      k += 1.0;
    }
    for (std::size_t f = 0; f < D; ++f) model[f] = rule.averaged ? w[f] - u[f] / k : w[f];
    result.iterations = epoch;
    const double sequences = static_cast<double>(std::max<std::size_t>(data.size(), 1));
    const double objective = (rule.stop_on_loss ? loss : error_fraction) / sequences;
    TrainProgress progress;
    progress.phase = rule.phase;
    progress.iteration = epoch;
    progress.objective = objective;  // ap: mean error fraction; pa, arow: mean loss
    progress.active_features = static_cast<std::size_t>(
        std::count_if(model.begin(), model.end(), [](double x) { return x != 0.0; }));
    double model_norm2 = 0.0;
    for (double x : model) model_norm2 += x * x;
    progress.feature_norm = std::sqrt(model_norm2);
    context.score_dev(
        [&](const SequenceView& sv, Lattice& lat) { scorer->fill(sv, model.data(), lat); },
        progress);
    best.offer(model.data(), D, progress);
    if (!context.report(progress)) {
      result.cancelled = true;
      result.stop_reason = "cancelled";
      break;
    }
    if (objective < epsilon) {
      result.stop_reason = rule.stop_on_loss ? "mean loss below epsilon"
                                             : "training error below epsilon";
      break;
    }
  }
  scorer->weights() = context.dev.size() > 0 && !best.empty() ? best.weights() : model;
  if (context.dev.size() > 0) record_kept(best, result);
  return scorer;
}

}  // namespace septa::crf
