// -a l2sgd: stochastic gradient descent on the L2-regularised CRF likelihood, as CRFsuite
// defines it (its train_l2sgd: Shalev-Shwartz, Singer & Srebro 2007 "Pegasos" step sizes with
// Bottou's calibration of the initial rate, "Stochastic gradient descent tricks", 2012). The
// features are those of -a lbfgs (observation-conditioned B templates included).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "crf/algorithms/linear_chain_features.h"
#include "crf/scoring/linear_chain.h"
#include "septa/error.h"

namespace septa::crf {

namespace {

// CRFsuite's l2sgd stops at a relative improvement of 1e-6 (its lbfgs at 1e-5, septa's
// --delta default): used when --delta keeps its default.
constexpr double kDefaultDelta = 1e-6;

class L2Sgd {
 public:
  L2Sgd(const TrainingContext& context, const LinearChainScorer& scorer,
        const std::vector<char>& mask)
      : context_(context), scorer_(scorer), mask_(mask), L_(scorer.labels()),
        pair_probs_(L_ * L_), node_probs_(L_) {}

  struct Run {
    double loss = 0.0;        // the last epoch's sum of c_n (-log P(y_n|x_n)) + c2 |w|^2 term
    int epochs = 0;
    bool cancelled = false;
    bool finite = true;
    std::string stop_reason;
  };

  /*
   * CRFsuite's l2sgd loop over `order` (the first S sequences when calibrating), from w = 0:
   *   lambda = 2 c2 / N                        (so that N lambda / 2 |w|^2 = c2 |w|^2)
   *   for each sequence n, t = 0, 1, 2, ... counting over epochs:
   *     eta_t = 1 / (lambda (t0 + t))
   *     w    <- (1 - eta_t lambda) w - eta_t c_n grad_w(-log P(y_n | x_n; w))
   *   loss of an epoch = sum_n c_n (-log P(y_n|x_n)) (each before its own step)
   *                      + N lambda / 2 |w|^2  (after the epoch)
   * The shrinking factor is kept apart as w = decay * v, so a step touches only the features of
   * the sequence (v += -eta_t / decay c_n grad); v is rescaled when decay gets small and at the
   * end of each epoch. Stops when the loss improved by less than `delta` relative to `period`
   * epochs before, or after `epochs` epochs; keeps the weights of the lowest loss (or, with dev
   * data, of the best dev score).
   */
  Run run(std::vector<std::size_t> order, std::size_t N, double t0, double lambda, int epochs,
          bool calibration, int period, double delta, std::vector<double>& w,
          std::mt19937_64* shuffle) {
    Run result;
    const std::size_t D = w.size();
    std::fill(w.begin(), w.end(), 0.0);
    std::vector<double> best_w;  // [D] lowest loss
    double best_loss = DBL_MAX;
    BestWeights best_dev;
    std::vector<double> previous(static_cast<std::size_t>(std::max(1, period)), 0.0);
    double decay = 1.0, t = 0.0;
    result.stop_reason = "max iterations";
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      if (shuffle) std::shuffle(order.begin(), order.end(), *shuffle);
      double loss = 0.0;
      for (std::size_t n : order) {
        const SequenceView s = context_.data.sequence(n);
        const double eta = 1.0 / (lambda * (t0 + t));
        decay *= 1.0 - eta * lambda;
        if (std::fabs(decay) < 1e-9) {  // keep v in range: fold decay into it
          for (double& x : w) x *= decay;
          decay = 1.0;
        }
        loss += s.weight * step(s, decay, eta / decay * s.weight, w);
        t += 1.0;
      }
      for (double& x : w) x *= decay;
      decay = 1.0;
      if (!std::isfinite(loss)) {
        result.finite = false;
        result.loss = loss;
        result.stop_reason = "the loss overflowed";
        break;
      }
      double norm2 = 0.0;
      for (double x : w) norm2 += x * x;
      loss += 0.5 * lambda * norm2 * static_cast<double>(N);
      result.loss = loss;
      result.epochs = epoch;
      if (calibration) continue;
      if (loss < best_loss) {
        best_loss = loss;
        best_w = w;
      }
      const double improvement =
          period < epoch ? (previous[(epoch - 1) % period] - loss) / loss : delta;
      previous[(epoch - 1) % period] = loss;
      TrainProgress progress;
      progress.phase = "l2sgd";
      progress.iteration = epoch;
      progress.objective = loss;
      progress.feature_norm = std::sqrt(norm2);
      progress.active_features = static_cast<std::size_t>(
          std::count_if(w.begin(), w.end(), [](double x) { return x != 0.0; }));
      context_.score_dev(
          [&](const SequenceView& sv, Lattice& lat) { scorer_.fill(sv, w.data(), lat); },
          progress);
      best_dev.offer(w.data(), D, progress);
      if (!context_.report(progress)) {
        result.cancelled = true;
        result.stop_reason = "cancelled";
        break;
      }
      if (improvement < delta) {
        result.stop_reason = "converged (relative improvement below delta)";
        break;
      }
    }
    if (!calibration) {
      if (context_.dev.size() > 0 && !best_dev.empty()) {
        w = best_dev.weights();
        kept_ = best_dev;
      } else if (!best_w.empty()) {
        w = best_w;
        result.loss = best_loss;
      }
    }
    return result;
  }

  // Sum of c_n (-log P(y_n|x_n)) over `order` at weights w (CRFsuite's initial calibration loss).
  double loss(const std::vector<std::size_t>& order, const std::vector<double>& w) {
    double total = 0.0;
    for (std::size_t n : order) {
      const SequenceView s = context_.data.sequence(n);
      if (s.T == 0) continue;
      scorer_.fill(s, w.data(), lattice_);
      gold_.assign(s.labels, s.labels + s.T);
      total += s.weight * (lattice_.forward_backward() - lattice_.path_score(gold_.data()));
    }
    return total;
  }

  const BestWeights& kept() const { return kept_; }

 private:
  /*
   * One step on sequence s at weights decay * v: returns -log P(y|x) and adds
   *   v += gain * (Phi(x, y) - E_{P(y'|x)} Phi(x, y'))          (gain = eta c / decay)
   * over the features that exist (transitions outside the mask stay zero).
   */
  double step(const SequenceView& s, double decay, double gain, std::vector<double>& v) {
    if (s.T == 0) return 0.0;
    const std::size_t L = L_;
    scorer_.fill(s, v.data(), lattice_);
    // The lattice is linear in the weights: scale its potentials by decay.
    for (std::size_t t = 0; t < s.T; ++t) {
      double* state = lattice_.state(t);
      for (std::size_t j = 0; j < L; ++j) state[j] *= decay;
    }
    const std::size_t matrices = scorer_.per_position() ? s.T - 1 : std::min<std::size_t>(1, s.T - 1);
    for (std::size_t k = 1; k <= matrices; ++k) {
      double* trans = lattice_.transition(k);
      for (std::size_t q = 0; q < L * L; ++q) trans[q] *= decay;
    }
    gold_.assign(s.labels, s.labels + s.T);
    const double log_z = lattice_.forward_backward();
    const double loss = log_z - lattice_.path_score(gold_.data());

    const SparseFeatures& states = scorer_.states();
    for (std::size_t t = 0; t < s.T; ++t) {
      for (std::size_t j = 0; j < L; ++j) node_probs_[j] = -gain * lattice_.node_marginal(t, j);
      for (std::size_t e = s.item_offsets[t]; e < s.item_offsets[t + 1]; ++e) {
        const int32_t a = s.attribute_ids[e];
        const double value = s.attribute_values[e];
        states.add_expectations(a, value, node_probs_.data(), v.data());
        const int64_t f = states.find(a, s.labels[t]);
        if (f >= 0) v[static_cast<std::size_t>(f)] += gain * value;
      }
    }
    double* trans_v = &v[scorer_.transition_offset()];
    if (!scorer_.per_position()) {
      std::fill(pair_probs_.begin(), pair_probs_.end(), 0.0);
      lattice_.add_edge_marginal_sums(1.0, pair_probs_.data());
      for (std::size_t q = 0; q < L * L; ++q)
        if (mask_[q]) trans_v[q] -= gain * pair_probs_[q];
    } else {
      const SparseFeatures& edges = scorer_.edges();
      double* edge_v = &v[scorer_.edge_offset()];
      for (std::size_t t = 1; t < s.T; ++t) {
        std::fill(pair_probs_.begin(), pair_probs_.end(), 0.0);
        lattice_.add_edge_marginals(t, -gain, pair_probs_.data());
        for (std::size_t q = 0; q < L * L; ++q)
          if (mask_[q]) trans_v[q] += pair_probs_[q];
        const auto pair = static_cast<int32_t>(s.labels[t - 1] * L + s.labels[t]);
        for (std::size_t e = s.edge_offsets[t]; e < s.edge_offsets[t + 1]; ++e) {
          edges.add_expectations(s.edge_ids[e], 1.0, pair_probs_.data(), edge_v);
          const int64_t f = edges.find(s.edge_ids[e], pair);
          if (f >= 0) edge_v[f] += gain;
        }
      }
    }
    for (std::size_t t = 1; t < s.T; ++t) {
      const std::size_t q = s.labels[t - 1] * L + s.labels[t];
      if (mask_[q]) trans_v[q] += gain;
    }
    return loss;
  }

  const TrainingContext& context_;
  const LinearChainScorer& scorer_;
  const std::vector<char>& mask_;
  std::size_t L_;
  Lattice lattice_;
  std::vector<int> gold_;           // [T]
  std::vector<double> pair_probs_;  // [L][L]
  std::vector<double> node_probs_;  // [L]
  BestWeights kept_;
};

}  // namespace

/*
 * Calibration (CRFsuite's l2sgd_calibration): on S = min(N, calibration.samples) shuffled
 * sequences, from w = 0, run one epoch for each candidate rate eta (t0 = 1 / (lambda eta)),
 * starting at calibration.eta and multiplying by calibration.rate while the epoch's loss stays
 * below the loss at w = 0 and fewer than calibration.candidates rates have done so; then from
 * calibration.eta / rate downwards, dividing by rate, for calibration.candidates more good
 * rates; at most calibration.max_trials trials in all. The rate of the lowest loss wins, and
 * training runs with t0 = 1 / (lambda eta_best).
 */
std::unique_ptr<Scorer> train_l2sgd(const TrainingContext& context, TrainResult& result) {
  const TrainOptions& options = context.options;
  auto scorer = std::make_unique<LinearChainScorer>(build_linear_chain(context));
  const std::vector<char> mask = transition_mask(context);
  const std::size_t N = context.data.size();
  const double lambda = 2.0 * options.c2 / static_cast<double>(N);
  if (!(lambda > 0.0))
    throw OptionError("option --c2: l2sgd needs c2 > 0 (its step sizes are 1 / (lambda t))");
  const double delta = options.delta == TrainOptions{}.delta ? kDefaultDelta : options.delta;
  L2Sgd sgd(context, *scorer, mask);
  std::vector<double>& w = scorer->weights();
  std::mt19937_64 rng(options.seed);

  std::vector<std::size_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const std::size_t S = std::min<std::size_t>(N, static_cast<std::size_t>(options.calibration_samples));
  const std::vector<std::size_t> samples(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(S));
  std::fill(w.begin(), w.end(), 0.0);
  const double initial = sgd.loss(samples, w);
  double eta = options.calibration_eta, best_eta = options.calibration_eta, best_loss = DBL_MAX;
  int candidates = options.calibration_candidates, trials = 1;
  bool decreasing = false;
  while (candidates > 0 || !decreasing) {
    const L2Sgd::Run trial =
        sgd.run(samples, S, 1.0 / (lambda * eta), lambda, 1, true, 1, 0.0, w, nullptr);
    const bool ok = trial.finite && trial.loss < initial;
    if (ok) --candidates;
    if (trial.finite && trial.loss < best_loss) {
      best_loss = trial.loss;
      best_eta = eta;
    }
    TrainProgress progress;
    char phase[48];
    std::snprintf(phase, sizeof phase, "calibrate eta=%g", eta);
    progress.phase = phase;
    progress.iteration = trials;
    progress.objective = trial.loss;
    if (!context.report(progress)) {
      result.cancelled = true;
      result.stop_reason = "cancelled during the calibration";
      std::fill(w.begin(), w.end(), 0.0);
      return scorer;
    }
    if (!decreasing) {
      if (ok && candidates > 0) {
        eta *= options.calibration_rate;
      } else {
        decreasing = true;
        candidates = options.calibration_candidates;
        eta = options.calibration_eta / options.calibration_rate;
      }
    } else {
      eta /= options.calibration_rate;
    }
    if (++trials >= options.calibration_max_trials) break;
  }
  result.chosen_eta = best_eta;

  const L2Sgd::Run trained = sgd.run(order, N, 1.0 / (lambda * best_eta), lambda,
                                     options.max_iterations, false, options.period, delta, w, &rng);
  if (!trained.finite)
    throw NumericalError("l2sgd: the loss overflowed at eta = " + std::to_string(best_eta) +
                " (lower --calibration-eta or raise --c2)");
  result.cancelled = trained.cancelled;
  result.iterations = trained.epochs;
  result.stop_reason = trained.stop_reason;
  if (context.dev.size() > 0) record_kept(sgd.kept(), result);
  return scorer;
}

}  // namespace septa::crf
