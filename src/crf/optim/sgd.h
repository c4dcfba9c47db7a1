// Data-parallel, deterministic stochastic gradient descent for one softmax factor: SGD on a
// fixed number of shards with iterative parameter mixing several times per epoch (McDonald,
// Hall and Mann 2010, "Distributed training strategies for the structured perceptron",
// section 3), the mix taken weight by weight over the shards that updated the weight; Bottou
// 2010 for the per-shard SGD, the same scheme as CRFsuite's l2sgd.
//
// The shards and the rounds are fixed by the data, the seed and the options, never by the
// thread or process count, and the mix adds the shard results in shard order, so the weights
// are bit-identical however the shard work is distributed. A shard's round is a pure function
// (epoch, round, shard, mixed weights) -> ShardUpdate: the weights it updated and their
// values. Those updates are sparse, so the mix, the step search and the workers' weight
// buffers cost what the round touched, not the dimension: the parallelism is the shard count
// (`--shards`, default 16), not capped by a dense mix.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "crf/objectives/softmax_objective.h"
#include "crf/optim/huge_pages.h"
#include "crf/optim/minimizer.h"
#include "septa/communicator.h"

namespace septa::crf {

struct HeldInstances;
class ListedFeatureCache;
class RangeCache;

struct ShardedSgdOptions {
  double c2 = 1.0;           // L2 penalty c2 ||w||^2 of the whole objective
  int epochs = 3;            // passes over the data
  std::size_t shards = 4;    // fixed shard count S (1: plain sequential SGD)
  std::size_t mixes = 1;     // rounds per epoch M: the shards mix after each
  uint64_t seed = 1;         // shard assignment and visiting order
  std::size_t parts = 1;     // P: contiguous parts of the data the shards spread within
};

// What one shard's SGD over one part of its slice changed: the weights it updated (sorted) and
// their values after the part (scale folded in), the product of its decay factors (every weight
// it did not update was multiplied by it), its summed loss and its share n_part / N_round.
struct ShardUpdate {
  double loss = 0.0;
  double decay = 1.0;
  double share = 0.0;
  std::vector<uint32_t> index;  // [updated] weight ids, increasing
  std::vector<double> value;    // [>= updated] the first index.size() are the values (kept
                                // between rounds: a zero fill per round cost 1% of a rank)
  // Received from another rank (training spread over ranks): the entries are read in place in
  // its message, `received` of them at index_at (aligned) and value_at (8 bytes each, any
  // alignment); index and value are then unused. Null: the vectors.
  const uint32_t* index_at = nullptr;
  const char* value_at = nullptr;
  std::size_t received = 0;
  // [65] (own shards; empty when received): starts[r] is the first entry whose id is at least
  // D r / 64, the first weight of the mix's range r (ShardMix::kRanges), starts[64] the entries:
  // the mix finds a range's entries without a binary search in each update (they had been 15%
  // of its accumulate pass on CoNLL-2000).
  std::vector<uint32_t> starts;
  std::size_t size() const { return index_at ? received : index.size(); }
  const uint32_t* ids() const { return index_at ? index_at : index.data(); }
  const char* value_bytes() const {
    return index_at ? value_at : reinterpret_cast<const char*>(value.data());
  }
  void clear() {
    loss = 0.0;
    decay = 1.0;
    share = 0.0;
    index.clear();
    starts.clear();
    index_at = nullptr;
    value_at = nullptr;
    received = 0;
  }
};

/*
 * Objective: sum_i w_i loss_i(w) + c2 ||w||^2 over N instances, i.e. per instance
 * loss_i(w) + (lambda / 2) ||w||^2 with lambda = 2 c2 / N.
 *
 * Shards: the instances of each of P = options.parts contiguous parts of the data in a seeded
 * random order, part after part, cut into S contiguous slices of n_s items (with P | S, shard
 * s spreads over part s P / S only; P = 1: a seeded permutation of all the instances). Epoch e (1-based): shard s shuffles its slice (seeded by
 * seed, s, e) and cuts the result into M consecutive parts. (Over R ranks, rank q trains the
 * shards [S q / R, S (q+1) / R): when R divides P, the part it read, so few instances move.) Round r = 0..M-1, from the mixed weights w:
 *   each shard s runs SGD over its part r from w, with the rate eta_t = eta0 / (1 + lambda
 *   eta0 t), t = (e-1) n_s + (steps of its earlier parts) + j its own step count, giving w_s;
 *   mix (added in shard order s = 0..S-1), with a = sum_s share_s decay_s the shares' mean
 *   decay: a sparse weight that c > 0 shards updated moves by the mean of their steps,
 *        Delta_d = (1/c) sum (w_s,d - w_d); dense weights (biases) by the share-weighted step
 *        sum_s share_s (w_s,d - w_d) (a shard that did not update one decayed it); every other
 *        weight only decays, Delta_d = (a - 1) w_d;
 *   w <- w + gamma Delta, gamma from mixing_step (a grid in [1, S] scored on a fixed sample).
 * eta0 is calibrated once on a 1,000-instance sample (Bottou's calibration; each candidate
 * rate a sequential pass, the rates spread over threads and ranks). The samples (this one and
 * the step search's) are drawn from a seeded permutation of the instances, spread over the
 * data.
 */
class ShardedSgd {
 public:

  // The rate calibration's candidate rates are scored on `threads` threads, and with `ranks`
  // (every rank holding the same data and w0) spread over the ranks; the rate is the one of one
  // process.
  // With `spread` (and ranks), `data` and `instances` are this rank's own part of the
  // factor: the instances of the items it read, in item order (global id: the instances of
  // the ranks before it, then these), with their candidate lists in shape.candidates. The
  // ranks then exchange the instances (exchange_instances) so that each holds only those of
  // the shards it trains (shards_of; fit_sharded_sgd) and of the fixed samples (rate
  // calibration, step search): since shards are contiguous and rank q trains the q-th R-th of
  // them, a rank keeps nearly all it read and receives the remainder and the samples; `released` (when set) is called as soon as the
  // own part (data, instances and their candidate lists) is read no more, before the rate
  // calibration, so that the caller frees it while the held part is set up.
  ShardedSgd(const Dataset& data, const std::vector<LocalInstance>& instances,
             const SoftmaxModelShape& shape, const ShardedSgdOptions& options,
             const std::vector<double>& w0, int threads = 1, Communicator* ranks = nullptr,
             bool spread = false, const std::function<void()>& released = nullptr);
  ~ShardedSgd();

  std::size_t shards() const { return shard_bounds_.size() - 1; }
  // The shards [first, end) that rank q of R trains: [S q / R, S (q+1) / R) (contiguous, as
  // the ranks' parts of the training file are).
  std::pair<std::size_t, std::size_t> shards_of(std::size_t q, std::size_t R) const {
    return {shards() * q / R, shards() * (q + 1) / R};
  }
  std::size_t mixes() const { return options_.mixes; }
  std::size_t dimension() const { return shape_.dimension(); }
  std::size_t instances() const { return order_.size(); }
  // Spread over ranks: how many of the instances this rank holds came from other ranks (the
  // remainder of its shards at the cuts, and the samples); 0 otherwise.
  std::size_t received() const { return received_; }
  double rate() const { return eta0_; }
  double c2() const { return options_.c2; }

  // Round `round` (0-based, < mixes()) of epoch `epoch` (1-based) of shard s: SGD from the
  // weights scale * v over the shard's part. v [dimension] is the caller's buffer, equal to z
  // [dimension] on entry and on return (restored from z where the part changed it); touched
  // [dimension / 64 + 1] is all zero on entry and on return. The result goes to `out`.
  // Thread-safe: different shards may run concurrently with different buffers. `stop`, when
  // set, is polled and ends the part early.
  void train_part(std::size_t s, int epoch, std::size_t round, double* v, const double* z,
                  double scale, std::vector<uint64_t>& touched, ShardUpdate& out,
                  const std::atomic<bool>* stop = nullptr) const;

  // Epoch `epoch` of shard s in one go (all its parts, no mixing) in place on w [dimension];
  // returns its summed loss.
  double train_shard(std::size_t s, int epoch, double* w,
                     const std::atomic<bool>* stop = nullptr) const;

  // The step gamma in w + gamma Delta, w = G z [dimension], Delta = (a - 1) w + delta
  // [dimension] (delta 0 off the updated weights), ww = ||w||^2, wd = w . delta,
  // dd = ||delta||^2. The sample is scored in fixed blocks on `threads` threads; cpu, when
  // given, gets the CPU seconds each block took. With `ranks` (every rank holding the same
  // z, delta and sample) the blocks are spread over the ranks and their losses allgathered:
  // the step of one process on every rank (cpu: this rank's blocks, the others 0).
  double mixing_step(const double* z, double G, double a, const double* delta, double ww,
                     double wd, double dd, int threads, std::vector<double>* cpu = nullptr,
                     Communicator* ranks = nullptr) const;

  const SoftmaxModelShape& shape() const { return shape_; }
  // The feature ranges of the instances (RangeCache; null when none was built), handed to a
  // caller that scores the instances again once trained; the SGD reads them no more.
  std::unique_ptr<RangeCache> take_range_cache();
  // Spread over ranks, with a RangeCache and options.parts a multiple of the rank count:
  // [own instances] the cache index (held index) of each of this rank's own instances (the
  // ones it read), kNotCached where it holds none; empty otherwise. Handed over with the
  // cache, so that the own items can be scored from it.
  static constexpr uint32_t kNotCached = ~uint32_t{0};
  std::vector<uint32_t> take_own_cached() { return std::move(own_held_); }

  // The weights mixing_step reads, as merged increasing ranges [first, last): every feature of
  // the sample instances' attributes and their dense rows (a superset of what their scores read).
  const std::vector<std::pair<std::size_t, std::size_t>>& step_reads() const { return step_reads_; }

  // Instances in the step search's sample: positions j N / M of a seeded permutation, j < M;
  // 4,000 per epoch, i.e. 4,000 / mixes per mix, at least 1,000 (at most N).
  std::size_t step_sample_size() const {
    return std::min<std::size_t>(order_.size(), std::max<std::size_t>(1000, 4000 / mixes()));
  }

 private:
  static constexpr std::size_t kNotHeld = ~std::size_t{0};


  // The instances [size] of shard s's part `round` in epoch `epoch`, and the step count of
  // the first.
  const std::size_t* part(std::size_t s, int epoch, std::size_t round, std::size_t& size,
                          std::size_t& first_step) const;

  // Spread over ranks: exchanges the own instances; sets held_, data_, instances_, shape_'s
  // lists and translates order_ and step_sample_ into held indices (returns the calibration
  // sample, held indices). `permutation` [N]: the samples' seeded permutation.
  std::vector<std::size_t> spread_instances(const Dataset& own_data,
                                            const std::vector<LocalInstance>& own,
                                            const std::vector<std::size_t>& permutation,
                                            Communicator& ranks);
  // Spread over ranks, with the features cached: cuts the held items to those still read.
  void keep_read_items();
  // Builds cache_ or range_cache_ where the shape and data allow.
  void build_caches(bool spread, int threads);
  // After build_caches, the calibration and find_step_reads: spread, cuts the held items to
  // those still read; copies the instance records the steps read (with a cache).
  void finish_caches(bool spread);
  // Sets step_reads_ (from the sample instances' items).
  void find_step_reads();

  std::unique_ptr<HeldInstances> held_;  // spread over ranks: what this rank holds
  std::unique_ptr<ListedFeatureCache> cache_;  // listed instances' features, or null
  std::unique_ptr<RangeCache> range_cache_;    // unlisted instances' feature ranges, or null
  const Dataset* data_;
  const std::vector<LocalInstance>* instances_;
  SoftmaxModelShape shape_;
  ShardedSgdOptions options_;
  // [N] the instance at each position: j in one process (spread over ranks: the held index
  // of instance j in this rank's shards, kNotHeld elsewhere)
  std::vector<std::size_t> order_;
  std::vector<std::size_t> shard_bounds_;  // [S+1] slices of order_
  // [step_sample_size()] the step search's sample: the instances at positions j N / M of a
  // seeded permutation (spread over ranks: held indices)
  std::vector<std::size_t> step_sample_;
  std::size_t received_ = 0;
  std::vector<uint32_t> own_held_;  // [own instances] see take_own_cached (spread, range cache)
  double lambda_ = 0.0;
  double eta0_ = 0.1;
  mutable std::vector<std::vector<std::size_t>> visits_;  // [S][n_s] shard's order this epoch
  mutable std::vector<int> visit_epoch_;                   // [S] epoch of visits_[s] (0: none)
  std::vector<std::pair<std::size_t, std::size_t>> step_reads_;  // [ranges] see step_reads()
  // [N] with a cache: a copy of *instances_ on huge pages, what the steps read (else empty)
  std::vector<LocalInstance, HugePageAllocator<LocalInstance>> step_instances_;
  const LocalInstance* step_instances() const;  // step_instances_ or *instances_
};

// Per-epoch report: epoch, objective estimate (summed shard losses + c2 ||w||^2); returns
// false to stop after this epoch.
using EpochCallback = std::function<bool(int epoch, double objective)>;

// Runs epochs first_epoch..epochs of `sgd` (w: the weights after epoch first_epoch - 1) on
// `threads` threads (the shards of each round on any worker, mixed in shard order) and leaves
// the mixed weights in w [dimension]. The result never depends on `threads`. With `ranks`
// (every rank holding the same data and weights), rank r trains the shards sgd.shards_of(r, R),
// the ranks allgather the shards' sparse updates and every rank mixes all of them in shard
// order: the same weights on every rank, bit for bit those of one process.
MinimizerResult fit_sharded_sgd(const ShardedSgd& sgd, int epochs, double c2, int threads,
                                std::vector<double>& w, const EpochCallback& on_epoch,
                                const std::atomic<bool>* stop = nullptr, int first_epoch = 1,
                                Communicator* ranks = nullptr);

}  // namespace septa::crf
