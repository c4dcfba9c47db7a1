#include "crf/optim/sgd.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace septa::crf {
namespace {

/*
 * Per-instance objective  loss_i(w) + (lambda / 2) ||w||^2,  lambda = 2 c2 / N, so that the
 * sum over an epoch is the regularised objective. Step t:
 *   eta_t = eta0 / (1 + lambda eta0 t)
 *   w <- (1 - eta_t lambda) w - eta_t grad loss_i(w)
 * The decay touches every weight; it is kept as a scalar: w = scale * v (Shalev-Shwartz et al.
 * 2007), so each step costs only the features of the instance.
 */
class SgdState {
 public:
  SgdState(const Dataset& data, const SoftmaxModelShape& shape, std::vector<double> w, double lambda)
      : data_(data), shape_(shape), v_(std::move(w)), lambda_(lambda), scores_(shape.K) {}

  // One step on `instance`; returns its loss before the step.
  double step(const LocalInstance& instance, double eta) {
    const std::size_t K = shape_.K;
    softmax_raw_scores(shape_, ItemArrays::of(data_), instance, v_.data(), scale_, scores_.data());
    const double gold_score = scores_[instance.gold];
    const double loss = softmax_normalize(scores_.data(), K) - gold_score;
    for (std::size_t c = 0; c < K; ++c) scores_[c] *= instance.weight;
    scores_[instance.gold] -= instance.weight;  // w_i (P - onehot)
    scale_ *= 1.0 - eta * lambda_;
    const double rate = -eta / scale_;
    for (std::size_t c = 0; c < K; ++c) scores_[c] *= rate;
    add_instance_gradient(shape_, ItemArrays::of(data_), instance, scores_.data(), v_.data());
    if (scale_ < 1e-9) rescale();
    return instance.weight * loss;
  }

  void rescale() {
    for (double& x : v_) x *= scale_;
    scale_ = 1.0;
  }
  double squared_norm() const {
    double sum = 0.0;
    for (double x : v_) sum += x * x;
    return sum * scale_ * scale_;
  }
  std::vector<double> weights() {
    rescale();
    return v_;
  }

 private:
  const Dataset& data_;
  const SoftmaxModelShape& shape_;
  std::vector<double> v_;  // [dimension] weights / scale_
  double scale_ = 1.0;
  double lambda_;
  std::vector<double> scores_;  // [K]
};

// Bottou's calibration: one pass over a sample for each candidate rate; the rate with the lowest
// sample objective wins.
double calibrate_rate(const Dataset& data, const std::vector<LocalInstance>& instances,
                      const std::vector<std::size_t>& sample, const SoftmaxModelShape& shape,
                      const std::vector<double>& w0, double c2) {
  const double lambda = 2.0 * c2 / static_cast<double>(sample.size());
  double best_rate = 0.1, best_objective = INFINITY;
  for (double rate : {2.0, 1.0, 0.5, 0.25, 0.1, 0.05, 0.02}) {
    SgdState state(data, shape, w0, lambda);
    for (std::size_t t = 0; t < sample.size(); ++t)
      state.step(instances[sample[t]], rate / (1.0 + lambda * rate * t));
    double loss = 0.0;
    std::vector<double> w = state.weights();
    std::vector<double> probs(shape.K);
    for (std::size_t i : sample) {
      const LocalInstance& instance = instances[i];
      softmax_raw_scores(shape, ItemArrays::of(data), instance, w.data(), 1.0, probs.data());
      const double gold = probs[instance.gold];
      loss += instance.weight * (softmax_normalize(probs.data(), shape.K) - gold);
    }
    double norm = 0.0;
    for (double x : w) norm += x * x;
    const double objective = loss + c2 * norm;
    if (std::isfinite(objective) && objective < best_objective) {
      best_objective = objective;
      best_rate = rate;
    }
  }
  return best_rate;
}

}  // namespace

MinimizerResult fit_sgd(const TrainingContext& context, const std::string& phase,
                        const std::vector<LocalInstance>& instances,
                        const SoftmaxModelShape& shape, std::vector<double>& w,
                        SharedProgress& shared) {
  MinimizerResult result;
  const std::size_t N = instances.size();
  if (N == 0) {
    result.stop_reason = "no instances";
    return result;
  }
  const double c2 = context.options.c2;
  std::mt19937_64 rng(context.options.seed);
  std::vector<std::size_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const std::vector<std::size_t> sample(order.begin(), order.begin() + std::min<std::size_t>(N, 1000));
  const double eta0 = calibrate_rate(context.data, instances, sample, shape, w, c2);

  const double lambda = 2.0 * c2 / static_cast<double>(N);
  SgdState state(context.data, shape, w, lambda);
  std::size_t t = 0;
  result.stop_reason = "epochs done";
  for (int epoch = 1; epoch <= context.options.epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    double loss = 0.0;
    for (std::size_t i : order) {
      const double eta = lambda > 0.0 ? eta0 / (1.0 + lambda * eta0 * t)
                                      : eta0 / (1.0 + static_cast<double>(t) / N);
      loss += state.step(instances[i], eta);
      ++t;
    }
    result.iterations = epoch;
    result.objective = loss + c2 * state.squared_norm();
    TrainProgress progress;
    progress.phase = phase;
    progress.iteration = epoch;
    progress.objective = result.objective;
    progress.active_features = shape.dimension();
    {
      std::lock_guard<std::mutex> lock(shared.mutex);
      if (shared.stop || !context.report(progress)) shared.stop = true;
    }
    if (shared.stop) {
      result.cancelled = true;
      result.stop_reason = "cancelled";
      break;
    }
  }
  w = state.weights();
  return result;
}

}  // namespace septa::crf
