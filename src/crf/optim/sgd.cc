#include "crf/optim/sgd.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "crf/io/binary_io.h"
#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

/*
 * One SGD step on loss_i(w) + (lambda / 2) ||w||^2:
 *   w <- (1 - eta lambda) w - eta grad loss_i(w)
 * The decay touches every weight; it is kept as a scalar: w = scale * v (Shalev-Shwartz et al.
 * 2007), so each step costs only the features of the instance.
 */
// Whether the instance normalises over a list of one class, its gold class (e.g. an edge whose
// unary beam leaves one label pair): its softmax gives that class exactly 1 (fast_exp(0) / 1)
// whatever the weights, its loss is exactly 0 and its gradient exactly 0.
bool only_gold(const SoftmaxModelShape& shape, const LocalInstance& instance) {
  if (!shape.candidates || instance.candidates < 0 || shape.mask) return false;
  const CandidateLists& lists = *shape.candidates;
  const std::size_t c = static_cast<std::size_t>(instance.candidates);
  return lists.offsets[c + 1] - lists.offsets[c] == 1 &&
         lists.classes[lists.offsets[c]] == instance.gold;
}

class SgdState {
 public:
  SgdState(const Dataset& data, const SoftmaxModelShape& shape, double* v, double lambda)
      : items_(ItemArrays::of(data)), shape_(shape), v_(v), lambda_(lambda), scores_(shape.K) {}

  // One step on `instance`; returns its weighted loss before the step.
  double step(const LocalInstance& instance, double eta) {
    const std::size_t K = shape_.K;
    if (only_gold(shape_, instance)) {
      // P(gold) = 1 exactly, so the loss is 0 and the gradient step adds v * (-0.0) to each of
      // the instance's weights, which leaves them as they are: only the decay remains.
      scale_ *= 1.0 - eta * lambda_;
      if (scale_ < 1e-9) rescale();
      return instance.weight * 0.0;
    }
    // An instance with a candidate list looks its features up once, for scores and gradient.
    // One without a list keeps its feature ranges for the gradient (ranged).
    const bool has_list = shape_.candidates && instance.candidates >= 0;
    const bool listed = has_list && !shape_.mask, ranged = !has_list;
    if (listed)
      softmax_listed_scores(shape_, items_, instance, v_, scale_, scores_.data(), visits_);
    else if (ranged)
      softmax_ranged_scores(shape_, items_, instance, v_, scale_, scores_.data(), ranges_);
    else
      softmax_raw_scores(shape_, items_, instance, v_, scale_, scores_.data());
    const double gold_score = scores_[instance.gold];
    const double loss = softmax_normalize_instance(shape_, instance, scores_.data()) - gold_score;
    scores_[instance.gold] -= 1.0;  // P - onehot
    scale_ *= 1.0 - eta * lambda_;
    const double rate = -eta * instance.weight / scale_;
    if (shape_.candidates && instance.candidates >= 0) {  // the others are 0
      const CandidateLists& lists = *shape_.candidates;
      for (std::size_t i = lists.offsets[instance.candidates];
           i < lists.offsets[instance.candidates + 1]; ++i)
        scores_[lists.classes[i]] *= rate;
    } else {
      for (std::size_t c = 0; c < K; ++c) scores_[c] *= rate;
    }
    if (listed)
      add_listed_gradient(shape_, instance, visits_, scores_.data(), v_);
    else if (ranged)
      add_ranged_gradient(shape_, instance, ranges_, scores_.data(), v_);
    else
      add_instance_gradient(shape_, items_, instance, scores_.data(), v_);
    if (scale_ < 1e-9) rescale();
    return instance.weight * loss;
  }

  // Folds the scale into the weights (v becomes w).
  void rescale() {
    const std::size_t D = shape_.dimension();
    for (std::size_t d = 0; d < D; ++d) v_[d] *= scale_;
    scale_ = 1.0;
  }

 private:
  ItemArrays items_;
  const SoftmaxModelShape& shape_;
  double* v_;  // [dimension] weights / scale_
  double scale_ = 1.0;
  double lambda_;
  std::vector<double> scores_;  // [K]
  std::vector<FeatureVisit> visits_;  // features of the current instance's listed classes
  std::vector<FeatureRange> ranges_;  // feature ranges of the current unlisted instance
};

double squared_norm(const std::vector<double>& w) {
  double sum = 0.0;
  for (double x : w) sum += x * x;
  return sum;
}

/*
 * Bottou's calibration: one pass over a sample of M instances for each candidate rate; the rate
 * with the lowest sample objective wins. The sample stands for the whole data, so it keeps the
 * whole problem's per-instance penalty lambda = 2 c2 / N (its objective: the sample loss +
 * c2 (M / N) ||w||^2). (Before: lambda = 2 c2 / M, a penalty N/M times too strong that picked
 * rates 2.5x smaller on NER and cost 0.7 F1 on eng.testa; docs/crf.md.)
 */
double calibrate_rate(const Dataset& data, const std::vector<LocalInstance>& instances,
                      const std::vector<std::size_t>& sample, const SoftmaxModelShape& shape,
                      const std::vector<double>& w0, double c2, std::size_t N,
                      Communicator* ranks) {
  const double lambda = 2.0 * c2 / static_cast<double>(N);
  c2 *= static_cast<double>(sample.size()) / static_cast<double>(N);
  constexpr double kRates[] = {4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.05, 0.02};
  constexpr std::size_t R = sizeof kRates / sizeof kRates[0];
  // Over ranks, rank q scores the rates i = q, q + N, ... and the scores are allgathered: each
  // score is computed as one process computes it, and the choice below runs in rate order.
  const std::size_t P = ranks ? static_cast<std::size_t>(ranks->size()) : 1;
  const std::size_t me = ranks ? static_cast<std::size_t>(ranks->rank()) : 0;
  std::vector<double> objectives(R, NAN);  // [R] sample objective of each rate
  std::vector<double> w(w0.size());
  std::vector<double> probs(shape.K);
  for (std::size_t i = me; i < R; i += P) {
    const double rate = kRates[i];
    std::copy(w0.begin(), w0.end(), w.begin());
    SgdState state(data, shape, w.data(), lambda);
    for (std::size_t t = 0; t < sample.size(); ++t)
      state.step(instances[sample[t]], rate / (1.0 + lambda * rate * t));
    state.rescale();
    double loss = 0.0;
    for (std::size_t i : sample) {
      const LocalInstance& instance = instances[i];
      if (only_gold(shape, instance)) continue;  // loss exactly 0
      softmax_raw_scores(shape, ItemArrays::of(data), instance, w.data(), 1.0, probs.data());
      const double gold = probs[instance.gold];
      loss += instance.weight * (softmax_normalize_instance(shape, instance, probs.data()) - gold);
    }
    objectives[i] = loss + c2 * squared_norm(w);
  }
  if (P > 1) {
    std::vector<double> mine;  // [my rates]
    for (std::size_t i = me; i < R; i += P) mine.push_back(objectives[i]);
    const std::vector<std::string> parts = ranks->allgather(
        std::string(reinterpret_cast<const char*>(mine.data()), sizeof(double) * mine.size()));
    for (std::size_t q = 0; q < P; ++q)
      for (std::size_t i = q, k = 0; i < R; i += P, ++k) {
        SEPTA_CHECK(parts[q].size() >= sizeof(double) * (k + 1));
        std::memcpy(&objectives[i], parts[q].data() + sizeof(double) * k, sizeof(double));
      }
  }
  double best_rate = 0.1, best_objective = INFINITY;
  for (std::size_t i = 0; i < R; ++i)
    if (std::isfinite(objectives[i]) && objectives[i] < best_objective) {
      best_objective = objectives[i];
      best_rate = kRates[i];
    }
  return best_rate;
}

// A seed for (seed, shard, epoch) streams: splitmix64 of the combination.
uint64_t stream_seed(uint64_t seed, uint64_t shard, uint64_t epoch) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + shard * 0xBF58476D1CE4E5B9ULL + epoch * 0x94D049BB133111EBULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

ShardedSgd::ShardedSgd(const Dataset& data, const std::vector<LocalInstance>& instances,
                       const SoftmaxModelShape& shape, const ShardedSgdOptions& options,
                       const std::vector<double>& w0, Communicator* ranks)
    : data_(data), instances_(instances), shape_(shape), options_(options) {
  const std::size_t N = instances.size();
  const std::size_t S = std::max<std::size_t>(1, std::min(options.shards, std::max<std::size_t>(N, 1)));
  order_.resize(N);
  std::iota(order_.begin(), order_.end(), 0);
  std::mt19937_64 rng(options.seed);
  std::shuffle(order_.begin(), order_.end(), rng);
  for (std::size_t s = 0; s <= S; ++s) shard_bounds_.push_back(N * s / S);
  if (N == 0) return;
  lambda_ = 2.0 * options.c2 / static_cast<double>(N);
  const std::vector<std::size_t> sample(order_.begin(),
                                        order_.begin() + std::min<std::size_t>(N, 1000));
  eta0_ = calibrate_rate(data, instances, sample, shape, w0, options.c2, N, ranks);
}

/*
 * Step along the mixed direction: the mix w0 + Delta (Delta = sum_s (n_s/N) (w_s - w0)) moves
 * only as far as one shard's pass, so the step gamma in w0 + gamma Delta is chosen on a grid
 * in [1, S] by the objective estimated on a fixed strided sample of M instances:
 *   J(gamma) = (N/M) sum_{i in sample} w_i loss_i(w0 + gamma Delta) + c2 ||w0 + gamma Delta||^2
 * Scores are linear in gamma (s = s0 + gamma sDelta), so one pass over the sample scores every
 * grid point; ties and failures keep gamma = 1 (plain averaging).
 */
double ShardedSgd::mixing_step(const double* w0, const double* delta) const {
  const std::size_t S = shards(), N = order_.size(), K = shape_.K, D = dimension();
  std::vector<double> grid;
  for (double g = 1.0; g <= static_cast<double>(S) + 1e-9; g *= 1.41421356237) grid.push_back(g);
  if (grid.size() < 2) return 1.0;
  const std::size_t M = std::min<std::size_t>(N, 4000);
  std::vector<double> loss(grid.size(), 0.0);
  std::vector<double> s0(K), sd(K), s(K);
  const ItemArrays items = ItemArrays::of(data_);
  for (std::size_t j = 0; j < M; ++j) {
    const LocalInstance& instance = instances_[order_[j * N / M]];
    if (only_gold(shape_, instance)) continue;  // loss exactly 0 at every grid point
    softmax_raw_scores(shape_, items, instance, w0, 1.0, s0.data());
    softmax_raw_scores(shape_, items, instance, delta, 1.0, sd.data(), /*with_base=*/false);
    for (std::size_t g = 0; g < grid.size(); ++g) {
      for (std::size_t c = 0; c < K; ++c)
        s[c] = std::isinf(s0[c]) ? s0[c] : s0[c] + grid[g] * sd[c];
      const double gold = s[instance.gold];
      loss[g] += instance.weight * (softmax_normalize_instance(shape_, instance, s.data()) - gold);
    }
  }
  double a = 0.0, b = 0.0, c = 0.0;  // ||w0 + g Delta||^2 = a + 2 g b + g^2 c
  for (std::size_t d = 0; d < D; ++d) {
    a += w0[d] * w0[d];
    b += w0[d] * delta[d];
    c += delta[d] * delta[d];
  }
  double best = 1.0, best_objective = INFINITY;
  for (std::size_t g = 0; g < grid.size(); ++g) {
    const double objective = static_cast<double>(N) / static_cast<double>(M) * loss[g] +
                             options_.c2 * (a + 2.0 * grid[g] * b + grid[g] * grid[g] * c);
    if (std::isfinite(objective) && objective < best_objective) {
      best_objective = objective;
      best = grid[g];
    }
  }
  return best;
}

double ShardedSgd::shard_weight(std::size_t s) const {
  return static_cast<double>(shard_bounds_[s + 1] - shard_bounds_[s]) /
         static_cast<double>(order_.size());
}

double ShardedSgd::train_shard(std::size_t s, int epoch, double* w,
                               const std::atomic<bool>* stop, std::vector<char>* touched) const {
  const std::size_t begin = shard_bounds_[s], n = shard_bounds_[s + 1] - begin;
  std::vector<std::size_t> visit(order_.begin() + begin, order_.begin() + begin + n);
  std::mt19937_64 rng(stream_seed(options_.seed, s, epoch));
  std::shuffle(visit.begin(), visit.end(), rng);
  SgdState state(data_, shape_, w, lambda_);
  double loss = 0.0;
  std::size_t t = static_cast<std::size_t>(epoch - 1) * n;
  // Without L2 the rate decays over one pass of the whole data (N steps of plain SGD).
  const double no_l2_horizon = static_cast<double>(std::max<std::size_t>(n, 1));
  const CandidateLists* lists = shape_.candidates;
  for (std::size_t j = 0; j < n; ++j, ++t) {
    if (stop && (j & 4095) == 0 && stop->load(std::memory_order_relaxed)) break;
    const double eta = lambda_ > 0.0 ? eta0_ / (1.0 + lambda_ * eta0_ * static_cast<double>(t))
                                     : eta0_ / (1.0 + static_cast<double>(t) / no_l2_horizon);
    // The instances come in random order: each one's record, its item offsets, its candidate
    // list and its attribute ids are cache misses in a chain. Prefetched 8, 4 and 2 steps
    // ahead, the chains of consecutive steps overlap.
    if (j + 8 < n) __builtin_prefetch(&instances_[visit[j + 8]]);
    if (j + 4 < n) {
      const LocalInstance& ahead = instances_[visit[j + 4]];
      __builtin_prefetch(&data_.item_offsets[ahead.item]);
      if (lists && ahead.candidates >= 0) __builtin_prefetch(&lists->offsets[ahead.candidates]);
    }
    if (j + 2 < n) {
      const LocalInstance& ahead = instances_[visit[j + 2]];
      __builtin_prefetch(&data_.attribute_ids[data_.item_offsets[ahead.item]]);
      if (lists && ahead.candidates >= 0) {
        const std::size_t at = lists->offsets[ahead.candidates];
        __builtin_prefetch(&lists->classes[at]);
        if (!lists->base.empty()) __builtin_prefetch(&lists->base[at]);
      }
    }
    const LocalInstance& instance = instances_[visit[j]];
    loss += state.step(instance, eta);
    if (touched)
      for (int32_t k = 0; k < instance.span; ++k) {
        const std::size_t item = instance.item + k, shift = k * shape_.A;
        for (std::size_t e = data_.item_offsets[item]; e < data_.item_offsets[item + 1]; ++e)
          (*touched)[data_.attribute_ids[e] + shift] = 1;
      }
  }
  state.rescale();
  return loss;
}

namespace {

/*
 * Feature-wise mix of the shard results (in shard order s = 0..S-1), from the epoch's start w0:
 *   sparse weight d of attribute a:  Delta_d = (1 / c_d) sum_{s: a in shard s} (w_s,d - w0_d)
 *     where c_d counts the shards whose instances have attribute a (c_d > 0);
 *     Delta_d = sum_s (n_s / N) (w_s,d - w0_d) when no shard has it (only the L2 decay moved it);
 *   dense weights (biases, seen by every shard): Delta_d = sum_s (n_s / N) (w_s,d - w0_d).
 * A weight that one shard alone updated (a rare attribute) keeps that shard's whole step,
 * where plain parameter averaging divides it by S: with sparse features most weights are such,
 * and averaging slowed training per epoch about S-fold (measured in docs/crf.md).
 */
class ShardMix {
 public:
  // Mixes the weights [lo, hi) of [0, D) (over ranks: this rank's range).
  ShardMix(const ShardedSgd& sgd, std::size_t lo, std::size_t hi)
      : features_(sgd.features()), lo_(lo), hi_(hi), sum_(hi - lo), averaged_(hi - lo),
        count_(std::min(hi, features_.size()) - std::min(lo, features_.size())) {
    // The attributes with features in [lo, hi) (features are in attribute order): a rank
    // visits only its share of them.
    const auto& offsets = features_.offsets;  // [A+1]
    if (offsets.empty()) return;
    attribute_begin_ = static_cast<std::size_t>(
        std::upper_bound(offsets.begin(), offsets.end() - 1, lo) - offsets.begin());
    attribute_begin_ = attribute_begin_ > 0 ? attribute_begin_ - 1 : 0;
    attribute_end_ = static_cast<std::size_t>(
        std::lower_bound(offsets.begin(), offsets.end() - 1, hi) - offsets.begin());
    attribute_end_ = std::min(attribute_end_, features_.A);
  }
  explicit ShardMix(const ShardedSgd& sgd) : ShardMix(sgd, 0, sgd.dimension()) {}

  void reset() {
    std::fill(sum_.begin(), sum_.end(), 0.0);
    std::fill(averaged_.begin(), averaged_.end(), 0.0);
    std::fill(count_.begin(), count_.end(), 0);
  }

  // Shard result v [hi - lo] (the range) started from w0 [D]; touched [attributes]; share n_s / N.
  void add(const double* v, const double* w0, const std::vector<char>& touched, double share) {
    for (std::size_t d = lo_; d < hi_; ++d) averaged_[d - lo_] += share * (v[d - lo_] - w0[d]);
    for (std::size_t a = attribute_begin_; a < attribute_end_; ++a) {
      if (!touched[a]) continue;
      const std::size_t first = std::max<std::size_t>(features_.offsets[a], lo_);
      const std::size_t end = std::min<std::size_t>(features_.offsets[a + 1], hi_);
      for (std::size_t f = first; f < end; ++f) {
        sum_[f - lo_] += v[f - lo_] - w0[f];
        ++count_[f - lo_];
      }
    }
  }

  // The mixed direction Delta [hi - lo] (in place of the accumulators).
  const std::vector<double>& delta() {
    for (std::size_t i = 0; i < count_.size(); ++i)
      if (count_[i] > 0) averaged_[i] = sum_[i] / count_[i];
    return averaged_;
  }

 private:
  const SparseFeatures& features_;
  std::size_t lo_, hi_;
  std::size_t attribute_begin_ = 0, attribute_end_ = 0;  // attributes with features in range
  std::vector<double> sum_;       // [hi-lo] summed steps of the shards that touched the weight
  std::vector<double> averaged_;  // [hi-lo] share-weighted steps of all shards
  std::vector<uint32_t> count_;   // [sparse weights in the range] shards that touched them
};

}  // namespace

MinimizerResult fit_sharded_sgd(const ShardedSgd& sgd, int epochs, double c2, int threads,
                                std::vector<double>& w, const EpochCallback& on_epoch,
                                const std::atomic<bool>* stop, int first_epoch,
                                Communicator* ranks) {
  MinimizerResult result;
  const std::size_t S = sgd.shards(), D = sgd.dimension(), A = sgd.attributes();
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, S));
  std::vector<std::vector<double>> local(workers);   // [workers][D] shard weights
  std::vector<std::vector<char>> touched(workers);   // [workers][A] shard attributes
  std::vector<double> shard_loss(S, 0.0);
  // Over ranks, this rank mixes its range of the weights (see below).
  const std::size_t R = ranks ? static_cast<std::size_t>(ranks->size()) : 1;
  const std::size_t me = ranks ? static_cast<std::size_t>(ranks->rank()) : 0;
  ShardMix mix(sgd, D * me / R, D * (me + 1) / R);
  result.stop_reason = "epochs done";
  auto step = [&](const std::vector<double>& delta) {
    const double gamma = sgd.mixing_step(w.data(), delta.data());
    for (std::size_t d = 0; d < D; ++d) w[d] += gamma * delta[d];
  };
  for (int epoch = first_epoch; epoch <= epochs; ++epoch) {
    double loss = 0.0;
    if (S > 1) mix.reset();
    if (S == 1) {  // no mix: train in place
      loss = sgd.train_shard(0, epoch, w.data(), stop);
    } else if (ranks && ranks->size() > 1) {
      /*
       * A shard-order reduce-scatter: rank q mixes the weights [D q/R, D (q+1)/R). Shard s is
       * trained by rank s mod R, in rounds of W = R x threads consecutive shards (each rank
       * trains at most `threads` of them per round, concurrently); after each round every
       * trained shard sends rank q a record (shard, loss, its weights in q's range, touched [A])
       * and each rank adds the round's shards in shard order for its range. Over the rounds that
       * is every shard in shard order: the same sums as one process, with one round's records
       * in memory instead of all S shards'. The mixed direction's ranges are then allgathered.
       */
      std::vector<std::size_t> range(R + 1);  // [R+1]
      for (std::size_t q = 0; q <= R; ++q) range[q] = D * q / R;
      const auto record = [&](std::size_t q) {
        return 2 * sizeof(uint64_t) + sizeof(double) * (1 + range[q + 1] - range[q]) + A;
      };
      const std::size_t lo = range[me], n = range[me + 1] - lo;
      std::vector<double> shard_w(n);  // [my range] one shard's weights at a time
      std::vector<char> shard_touched(A);
      const std::size_t W = R * static_cast<std::size_t>(std::max(1, threads));
      for (std::size_t first = 0; first < S; first += W) {
        const std::size_t last = std::min(S, first + W);
        std::vector<std::size_t> mine;  // shards of this round trained on this rank
        for (std::size_t s = first; s < last; ++s)
          if (s % R == me) mine.push_back(s);
        std::vector<std::string> to(R);  // [R] records of my shards for rank q
        for (std::size_t q = 0; q < R; ++q) to[q].assign(mine.size() * record(q), '\0');
        parallel_for(mine.size(), threads, [&](std::size_t i) {
          std::vector<double> trained(w.begin(), w.end());  // [D]
          std::vector<char> marks(A, 0);                    // [A]
          shard_loss[mine[i]] = sgd.train_shard(mine[i], epoch, trained.data(), stop, &marks);
          for (std::size_t q = 0; q < R; ++q) {
            const std::size_t from = range[q], count = range[q + 1] - from;
            char* p = &to[q][i * record(q)];
            const uint64_t header[2] = {mine[i], count};
            std::memcpy(p, header, sizeof header);
            std::memcpy(p + sizeof header, &shard_loss[mine[i]], sizeof(double));
            std::memcpy(p + sizeof header + sizeof(double), &trained[from], sizeof(double) * count);
            std::memcpy(p + sizeof header + sizeof(double) * (1 + count), marks.data(), A);
          }
        });
        // This rank's own records stay here (not copied by the alltoall).
        std::string own = std::move(to[me]);
        to[me] = std::string();
        std::vector<std::string> parts = ranks->alltoall(to);
        parts[me] = std::move(own);
        to.clear();
        std::vector<const char*> shard_record(last - first, nullptr);  // [round] in parts
        for (const std::string& part : parts) {
          SEPTA_CHECK(part.size() % record(me) == 0);
          for (std::size_t at = 0; at < part.size(); at += record(me)) {
            uint64_t header[2];
            std::memcpy(header, &part[at], sizeof header);
            SEPTA_CHECK(header[0] >= first && header[0] < last && header[1] == n &&
                        shard_record[header[0] - first] == nullptr);
            shard_record[header[0] - first] = &part[at];
          }
        }
        for (std::size_t s = first; s < last; ++s) {  // the threaded mix's commit, shard order
          SEPTA_CHECK(shard_record[s - first] != nullptr);
          const char* p = shard_record[s - first] + 2 * sizeof(uint64_t);
          std::memcpy(&shard_loss[s], p, sizeof(double));
          std::memcpy(shard_w.data(), p + sizeof(double), sizeof(double) * n);
          std::memcpy(shard_touched.data(), p + sizeof(double) * (1 + n), A);
          mix.add(shard_w.data(), w.data(), shard_touched, sgd.shard_weight(s));
          loss += shard_loss[s];
        }
      }
      const std::vector<double>& mine_delta = mix.delta();
      std::string bytes(reinterpret_cast<const char*>(mine_delta.data()), sizeof(double) * n);
      const std::vector<std::string> ranges = ranks->allgather(std::move(bytes));
      std::vector<double> delta(D);  // [D]
      for (std::size_t q = 0; q < R; ++q) {
        SEPTA_CHECK(ranges[q].size() == sizeof(double) * (range[q + 1] - range[q]));
        std::memcpy(&delta[range[q]], ranges[q].data(), ranges[q].size());
      }
      step(delta);
    } else {
      auto work = [&](std::size_t s, std::size_t worker) {
        std::vector<double>& v = local[worker];
        v.assign(w.begin(), w.end());
        touched[worker].assign(A, 0);
        shard_loss[s] = sgd.train_shard(s, epoch, v.data(), stop, &touched[worker]);
      };
      auto commit = [&](std::size_t s, std::size_t worker) {
        mix.add(local[worker].data(), w.data(), touched[worker], sgd.shard_weight(s));
        loss += shard_loss[s];
      };
      for_blocks_ordered(S, static_cast<int>(workers), work, commit);
      step(mix.delta());
    }
    result.iterations = epoch;
    result.objective = loss + c2 * squared_norm(w);
    if (stop && stop->load()) {
      result.cancelled = true;
      result.stop_reason = "cancelled";
      break;
    }
    if (on_epoch && !on_epoch(epoch, result.objective)) {
      result.cancelled = true;
      result.stop_reason = "cancelled";
      break;
    }
  }
  return result;
}

}  // namespace septa::crf
