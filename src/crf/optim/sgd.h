// Data-parallel, deterministic stochastic gradient descent for one softmax factor: SGD on a
// fixed number of shards with iterative parameter mixing after every epoch (McDonald, Hall and
// Mann 2010, "Distributed training strategies for the structured perceptron", section 3), the
// mix taken feature by feature over the shards that saw the feature; Bottou 2010 for the
// per-shard SGD, the same scheme as CRFsuite's l2sgd.
//
// The shards are fixed by the data and the seed, never by the thread or process count, and
// the mix adds the shard results in shard order, so the weights are bit-identical however the
// shard work is distributed. The shard step is a pure function (epoch, shard, start weights)
// -> (shard weights, shard loss): a distributed driver (MPI) runs ShardedSgd::train_shard for
// its shards on its ranks and mixes the results in shard order exactly as fit_sharded_sgd does.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "crf/objectives/softmax_objective.h"
#include "crf/optim/minimizer.h"
#include "septa/communicator.h"

namespace septa::crf {

struct ShardedSgdOptions {
  double c2 = 1.0;           // L2 penalty c2 ||w||^2 of the whole objective
  int epochs = 3;            // passes over the data (one mix after each)
  std::size_t shards = 4;    // fixed shard count S (1: plain sequential SGD)
  uint64_t seed = 1;         // shard assignment and visiting order
};

/*
 * Objective: sum_i w_i loss_i(w) + c2 ||w||^2 over N instances, i.e. per instance
 * loss_i(w) + (lambda / 2) ||w||^2 with lambda = 2 c2 / N.
 *
 * Shards: a seeded permutation of the instances cut into S contiguous slices of n_s items.
 * Epoch e (1-based), from the mixed weights w^(e-1):
 *   each shard s runs SGD over its slice (in a seeded order that depends on seed, s, e) from
 *   w^(e-1), with the rate eta_t = eta0 / (1 + lambda eta0 t), t = (e-1) n_s + j the shard's
 *   own step count, giving w_s;
 *   mix (added in shard order s = 0..S-1): a sparse weight whose attribute occurs in c > 0
 *        shards moves by the mean of those c shards' steps, Delta_d = (1/c) sum (w_s,d - w_d);
 *        the others (dense biases, weights no shard saw) by Delta_d = sum_s (n_s/N)(w_s,d - w_d);
 *        w^(e) = w^(e-1) + gamma Delta, gamma from mixing_step (a grid in [1, S] scored on a
 *        fixed sample).
 * eta0 is calibrated once on a 1,000-instance sample (Bottou's calibration; each candidate
 * rate a sequential pass, the rates spread over ranks).
 */
class ShardedSgd {
 public:
  // With `ranks` (every rank holding the same data and w0), the rate calibration's candidate
  // rates are scored spread over the ranks; the rate is the one of one process.
  ShardedSgd(const Dataset& data, const std::vector<LocalInstance>& instances,
             const SoftmaxModelShape& shape, const ShardedSgdOptions& options,
             const std::vector<double>& w0, Communicator* ranks = nullptr);

  std::size_t shards() const { return shard_bounds_.size() - 1; }
  std::size_t dimension() const { return shape_.dimension(); }
  double rate() const { return eta0_; }
  // n_s / N: the weight of shard s in the mix.
  double shard_weight(std::size_t s) const;

  // The step gamma along the mixed direction delta [dimension] from w0 [dimension].
  double mixing_step(const double* w0, const double* delta) const;

  // Epoch `epoch` (1-based) of shard s: w [dimension] holds the start weights on entry and the
  // shard's weights on return. Returns the shard's summed weighted loss along the way (each
  // instance's loss before its step). Thread-safe: different shards may run concurrently
  // with different `w` buffers. `stop`, when set, is polled and ends the pass early.
  // touched, when given, is set to [attributes of the features] flags: 1 where the shard's
  // instances had the attribute (its features got gradient steps), else left as it was.
  double train_shard(std::size_t s, int epoch, double* w,
                     const std::atomic<bool>* stop = nullptr,
                     std::vector<char>* touched = nullptr) const;
  std::size_t attributes() const { return shape_.features->A; }
  const SparseFeatures& features() const { return *shape_.features; }

 private:
  const Dataset& data_;
  const std::vector<LocalInstance>& instances_;
  SoftmaxModelShape shape_;
  ShardedSgdOptions options_;
  std::vector<std::size_t> order_;         // [N] seeded permutation of instance indices
  std::vector<std::size_t> shard_bounds_;  // [S+1] slices of order_
  double lambda_ = 0.0;
  double eta0_ = 0.1;
};

// Per-epoch report: epoch, objective estimate (summed shard losses + c2 ||w||^2); returns
// false to stop after this epoch.
using EpochCallback = std::function<bool(int epoch, double objective)>;

// With `ranks` (every rank holding the same data and weights), rank r trains the shards
// s = r, r + R, ... and the ranks exchange the shard weights before the mix, which stays in
// shard order: the same weights on every rank, bit for bit those of one process.
// Runs epochs first_epoch..epochs of `sgd` (w: the weights after epoch first_epoch - 1) on `threads` threads (shard s of each epoch on any worker, mixed in
// shard order) and leaves the mixed weights in w [dimension]. The result never depends on
// `threads`.
MinimizerResult fit_sharded_sgd(const ShardedSgd& sgd, int epochs, double c2, int threads,
                                std::vector<double>& w, const EpochCallback& on_epoch,
                                const std::atomic<bool>* stop = nullptr, int first_epoch = 1,
                                Communicator* ranks = nullptr);

}  // namespace septa::crf
