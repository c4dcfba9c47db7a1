#include "crf/optim/sgd.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <random>

#include "crf/io/binary_io.h"
#include "crf/optim/listed_cache.h"
#include "crf/optim/only_gold.h"
#include "crf/optim/range_cache.h"
#include "crf/optim/shard_mix.h"
#include "crf/parallel/instance_exchange.h"
#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

// Marks weights [first, last) in a bitset, a word at a time (bit by bit, each read-modify-write
// of a word waited for the previous one: 7% of a unary fit).
void mark_range(uint64_t* bits, std::size_t first, std::size_t last) {
  if (first >= last) return;
  const std::size_t w0 = first >> 6, w1 = (last - 1) >> 6;
  const uint64_t head = ~uint64_t{0} << (first & 63);
  const uint64_t tail = ~uint64_t{0} >> (63 - ((last - 1) & 63));
  if (w0 == w1) {
    bits[w0] |= head & tail;
    return;
  }
  bits[w0] |= head;
  for (std::size_t w = w0 + 1; w < w1; ++w) bits[w] = ~uint64_t{0};
  bits[w1] |= tail;
}

/*
 * One SGD step on loss_i(w) + (lambda / 2) ||w||^2:
 *   w <- (1 - eta lambda) w - eta grad loss_i(w)
 * The decay touches every weight; it is kept as a scalar: w = scale * v (Shalev-Shwartz et al.
 * 2007), so each step costs only the features of the instance. `decay` keeps the product of
 * the decay factors (through rescales), `touched` (when given) marks the weights whose
 * gradient was applied.
 */
class SgdState {
 public:
  SgdState(const Dataset& data, const SoftmaxModelShape& shape, double* v, double lambda,
           double scale = 1.0, uint64_t* touched = nullptr,
           const ListedFeatureCache* cache = nullptr, const RangeCache* range_cache = nullptr)
      : items_(ItemArrays::of(data)), shape_(shape), v_(v), scale_(scale), lambda_(lambda),
        touched_(touched), cache_(cache),
        range_cache_(range_cache && !range_cache->empty() ? range_cache : nullptr),
        scores_(shape.K) {}

  // The cached features of the listed instances (ListedFeatureCache) and the cached ranges of
  // the others (RangeCache), or null.
  const ListedFeatureCache* cache() const { return cache_; }
  const RangeCache* range_cache() const { return range_cache_; }
  const double* weights() const { return v_; }

  // One step on `instance` (index i of the instances: its cached features, when cached);
  // returns its weighted loss before the step.
  double step(const LocalInstance& instance, double eta, std::size_t i = ~std::size_t{0}) {
    const std::size_t K = shape_.K;
    const double factor = 1.0 - eta * lambda_;
    decay_ *= factor;
    if (only_gold(shape_, instance)) {
      // P(gold) = 1 exactly, so the loss is 0 and the gradient step adds v * (-0.0) to each of
      // the instance's weights, which leaves them as they are: only the decay remains.
      scale_ *= factor;
      if (scale_ < 1e-9) rescale();
      return instance.weight * 0.0;
    }
    // An instance with a candidate list looks its features up once, for scores and gradient.
    // One without a list keeps its feature ranges for the gradient (ranged).
    const bool has_list = shape_.candidates && instance.candidates >= 0;
    const bool listed = has_list && !shape_.mask, ranged = !has_list;
    if (listed && cache_ && cache_->has(i)) return cached_step(instance, eta, i);
    if (ranged && range_cache_ && i != ~std::size_t{0}) return cached_ranged_step(instance, eta, i);
    if (listed)
      softmax_listed_scores(shape_, items_, instance, v_, scale_, scores_.data(), visits_);
    else if (ranged)
      softmax_ranged_scores(shape_, items_, instance, v_, scale_, scores_.data(), ranges_);
    else
      softmax_raw_scores(shape_, items_, instance, v_, scale_, scores_.data());
    const double gold_score = scores_[instance.gold];
    const double loss = softmax_normalize_instance(shape_, instance, scores_.data()) - gold_score;
    scores_[instance.gold] -= 1.0;  // P - onehot
    scale_ *= factor;
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
    if (touched_) mark(instance, listed, ranged);
    if (scale_ < 1e-9) rescale();
    return instance.weight * loss;
  }

  // step() of a listed instance from its cached features: the same arithmetic in the same
  // order (see ListedFeatureCache).
  double cached_step(const LocalInstance& instance, double eta, std::size_t i) {
    const double factor = 1.0 - eta * lambda_;
    const ListedEntry* entries = cache_->begin(i);
    const std::size_t n_entries = cache_->size(i);
    cached_listed_scores(shape_, instance, entries, n_entries, v_, scale_, scores_.data());
    const double gold_score = scores_[instance.gold];
    const double loss = softmax_normalize_instance(shape_, instance, scores_.data()) - gold_score;
    scores_[instance.gold] -= 1.0;  // P - onehot
    scale_ *= factor;
    const double rate = -eta * instance.weight / scale_;
    const CandidateLists& lists = *shape_.candidates;
    const std::size_t first = lists.offsets[instance.candidates];
    const std::size_t last = lists.offsets[instance.candidates + 1];
    for (std::size_t c = first; c < last; ++c) scores_[lists.classes[c]] *= rate;
    add_cached_gradient(shape_, instance, entries, n_entries, scores_.data(), v_);
    if (touched_) {
      for (std::size_t e = 0; e < n_entries; ++e)
        touched_[entries[e].f() >> 6] |= uint64_t{1} << (entries[e].f() & 63);
      if (shape_.R > 0) {
        const std::size_t dense =
            shape_.features->size() + static_cast<std::size_t>(instance.context) * shape_.K;
        for (std::size_t c = first; c < last; ++c)
          mark_range(touched_, dense + lists.classes[c], dense + lists.classes[c] + 1);
      }
    }
    if (scale_ < 1e-9) rescale();
    return instance.weight * loss;
  }

  // step() of an unlisted instance from its cached ranges (RangeCache): the same arithmetic in
  // the same order.
  double cached_ranged_step(const LocalInstance& instance, double eta, std::size_t i) {
    const std::size_t K = shape_.K;
    const double factor = 1.0 - eta * lambda_;
    const CachedRange* first = range_cache_->begin(i);
    const CachedRange* last = range_cache_->end(i);
    cached_ranged_scores(shape_, instance, first, last, v_, scale_, scores_.data());
    const double gold_score = scores_[instance.gold];
    const double loss = softmax_normalize(scores_.data(), K) - gold_score;
    scores_[instance.gold] -= 1.0;  // P - onehot
    scale_ *= factor;
    const double rate = -eta * instance.weight / scale_;
    for (std::size_t c = 0; c < K; ++c) scores_[c] *= rate;
    add_cached_ranged_gradient(shape_, instance, first, last, scores_.data(), v_);
    if (touched_) {
      for (const CachedRange* r = first; r != last; ++r) mark_range(touched_, r->first, r->last);
      if (shape_.R > 0) {
        const std::size_t dense =
            shape_.features->size() + static_cast<std::size_t>(instance.context) * K;
        mark_range(touched_, dense, dense + K);
      }
    }
    if (scale_ < 1e-9) rescale();
    return instance.weight * loss;
  }

  // Folds the scale into the weights (v becomes w).
  void rescale() {
    const std::size_t D = shape_.dimension();
    for (std::size_t d = 0; d < D; ++d) v_[d] *= scale_;
    scale_ = 1.0;
    rescaled_ = true;
  }

  double scale() const { return scale_; }
  double decay() const { return decay_; }
  bool rescaled() const { return rescaled_; }

 private:
  // Marks the weights the instance's gradient changed: its listed features and dense cells, or
  // every feature of its attributes and its whole dense row.
  void mark(const LocalInstance& instance, bool listed, bool ranged) {
    const SparseFeatures& features = *shape_.features;
    const std::size_t dense = features.size() + static_cast<std::size_t>(instance.context) * shape_.K;
    if (listed) {
      for (const FeatureVisit& visit : visits_)
        touched_[visit.f >> 6] |= uint64_t{1} << (visit.f & 63);
      if (shape_.R > 0) {
        const CandidateLists& lists = *shape_.candidates;
        for (std::size_t i = lists.offsets[instance.candidates];
             i < lists.offsets[instance.candidates + 1]; ++i)
          mark_range(touched_, dense + lists.classes[i], dense + lists.classes[i] + 1);
      }
      return;
    }
    if (ranged) {
      for (const FeatureRange& range : ranges_) mark_range(touched_, range.first, range.last);
    } else {
      for (int32_t k = 0; k < instance.span; ++k) {
        const std::size_t item = instance.item + k, shift = k * shape_.A;
        for (std::size_t e = items_.item_offsets[item]; e < items_.item_offsets[item + 1]; ++e) {
          const std::size_t a = items_.ids[e] + shift;
          mark_range(touched_, features.offsets[a], features.offsets[a + 1]);
        }
      }
    }
    if (shape_.R > 0) mark_range(touched_, dense, dense + shape_.K);
  }

  ItemArrays items_;
  const SoftmaxModelShape& shape_;
  double* v_;  // [dimension] weights / scale_
  double scale_ = 1.0;
  double decay_ = 1.0;
  bool rescaled_ = false;
  double lambda_;
  uint64_t* touched_;  // [dimension / 64 + 1] or null
  const ListedFeatureCache* cache_;  // features of the listed instances, or null
  const RangeCache* range_cache_;    // ranges of the unlisted instances, or null
  std::vector<double> scores_;  // [K]
  std::vector<FeatureVisit> visits_;  // features of the current instance's listed classes
  std::vector<FeatureRange> ranges_;  // feature ranges of the current unlisted instance
};

/*
 * Bottou's calibration: one pass over a sample of M instances for each candidate rate; the rate
 * with the lowest sample objective wins. The sample stands for the whole data, so it keeps the
 * whole problem's per-instance penalty lambda = 2 c2 / N (its objective: the sample loss +
 * c2 (M / N) ||w||^2). (Before: lambda = 2 c2 / M, a penalty N/M times too strong that picked
 * rates 2.5x smaller on NER and cost 0.7 F1 on eng.testa; docs/crf.md.) The candidate rates
 * are independent runs, tried concurrently (over threads and ranks); the choice reads them in
 * rate order.
 */
double calibrate_rate(const Dataset& data, const std::vector<LocalInstance>& instances,
                      const std::vector<std::size_t>& sample, const SoftmaxModelShape& shape,
                      const std::vector<double>& w0, double c2, std::size_t N, int threads,
                      Communicator* ranks, const ListedFeatureCache* cache,
                      const RangeCache* range_cache) {
  const double lambda = 2.0 * c2 / static_cast<double>(N);
  c2 *= static_cast<double>(sample.size()) / static_cast<double>(N);
  constexpr double kRates[] = {4.0, 2.0, 1.0, 0.5, 0.25, 0.1, 0.05, 0.02};
  constexpr std::size_t R = sizeof kRates / sizeof kRates[0];
  // Over ranks, rank q scores the rates i = q, q + P, ... (on its threads) and the scores are
  // allgathered: each score is computed as one process computes it, and the choice below runs
  // in rate order.
  const std::size_t P = ranks ? static_cast<std::size_t>(ranks->size()) : 1;
  const std::size_t me = ranks ? static_cast<std::size_t>(ranks->rank()) : 0;
  std::vector<double> objectives(R, NAN);  // [R] sample objective of each rate
  std::vector<std::size_t> mine;           // rates scored here
  for (std::size_t i = me; i < R; i += P) mine.push_back(i);
  // From zero weights (a fresh fit) each rate runs in a zero buffer reused from rate to rate
  // (a pool, one per concurrent task) and only the weights its steps marked are scaled,
  // summed into ||w||^2 (in increasing order: the zeros add nothing, so the sum is the same bit
  // for bit) and reset: a fresh copy of w0 per rate and the passes over the whole dimension
  // were most of the pairwise factor's calibration (8 x 9.2 MB on CoNLL-2000).
  const std::size_t D = w0.size();
  const bool from_zero = std::all_of(w0.begin(), w0.end(), [](double x) {
    return x == 0.0 && !std::signbit(x);
  });
  struct Buffers {
    std::vector<double> w;         // [D] all zero between rates
    std::vector<uint64_t> marked;  // [D / 64 + 1] all zero between rates
  };
  std::mutex pool_mutex;
  std::vector<Buffers> pool;
  parallel_for(mine.size(), threads, [&](std::size_t k) {
    const double rate = kRates[mine[k]];
    Buffers b;
    if (from_zero) {
      std::lock_guard<std::mutex> lock(pool_mutex);
      if (!pool.empty()) {
        b = std::move(pool.back());
        pool.pop_back();
      }
    }
    if (b.w.empty()) {
      b.w = w0;
      if (from_zero) b.marked.assign(D / 64 + 1, 0);
    }
    double* w = b.w.data();
    std::vector<double> probs(shape.K);
    SgdState state(data, shape, w, lambda, 1.0, from_zero ? b.marked.data() : nullptr, cache,
                   range_cache);
    for (std::size_t t = 0; t < sample.size(); ++t)
      state.step(instances[sample[t]], rate / (1.0 + lambda * rate * t), sample[t]);
    std::vector<uint32_t> changed;  // (from zero) the marked weights, increasing
    if (from_zero) {
      const double scale = state.scale();  // the rescale of the marked weights (0 * scale = 0)
      for (std::size_t word = 0; word < b.marked.size(); ++word)
        for (uint64_t bits = b.marked[word]; bits; bits &= bits - 1) {
          const std::size_t d = word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits));
          changed.push_back(static_cast<uint32_t>(d));
          w[d] *= scale;
        }
    } else {
      state.rescale();
    }
    double loss = 0.0;
    for (std::size_t i : sample) {
      const LocalInstance& instance = instances[i];
      if (only_gold(shape, instance)) continue;  // loss exactly 0
      if (cache && cache->has(i))
        cached_listed_scores(shape, instance, cache->begin(i), cache->size(i), w, 1.0,
                             probs.data());
      else if (state.range_cache() && !(shape.candidates && instance.candidates >= 0))
        cached_ranged_scores(shape, instance, range_cache->begin(i), range_cache->end(i), w,
                             1.0, probs.data());
      else
        softmax_raw_scores(shape, ItemArrays::of(data), instance, w, 1.0, probs.data());
      const double gold = probs[instance.gold];
      loss += instance.weight * (softmax_normalize_instance(shape, instance, probs.data()) - gold);
    }
    double norm = 0.0;
    if (from_zero) {
      for (uint32_t d : changed) {
        norm += w[d] * w[d];
        w[d] = 0.0;
      }
      std::fill(b.marked.begin(), b.marked.end(), 0);
      std::lock_guard<std::mutex> lock(pool_mutex);
      pool.push_back(std::move(b));
    } else {
      for (double x : b.w) norm += x * x;
    }
    objectives[mine[k]] = loss + c2 * norm;
  });
  if (P > 1) {
    std::vector<double> scored;  // [my rates]
    for (std::size_t i : mine) scored.push_back(objectives[i]);
    const std::vector<std::string> parts = ranks->allgather(
        std::string(reinterpret_cast<const char*>(scored.data()), sizeof(double) * scored.size()));
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

// Runs SGD over the instances `visit` (step count of the first: t0) with `state`.
double run_steps(const Dataset& data, const std::vector<LocalInstance>& instances,
                 const SoftmaxModelShape& shape, const std::size_t* visit, std::size_t n,
                 std::size_t t0, double eta0, double lambda, std::size_t horizon,
                 SgdState& state, const std::atomic<bool>* stop) {
  double loss = 0.0;
  std::size_t t = t0;
  const CandidateLists* lists = shape.candidates;
  const uint32_t* offsets = shape.features->offsets.data();
  const int32_t* ids = data.attribute_ids.data();
  const std::size_t* item_offsets = data.item_offsets.data();
  // Without L2 the rate decays over one pass of the shard's slice.
  const double no_l2_horizon = static_cast<double>(std::max<std::size_t>(horizon, 1));
  const ListedFeatureCache* cache = state.cache();
  const RangeCache* ranges = state.range_cache();
  const bool looked_up = !cache && !ranges;  // the items' attributes read every step
  for (std::size_t j = 0; j < n; ++j, ++t) {
    if (stop && (j & 4095) == 0 && stop->load(std::memory_order_relaxed)) break;
    const double eta = lambda > 0.0 ? eta0 / (1.0 + lambda * eta0 * static_cast<double>(t))
                                    : eta0 / (1.0 + static_cast<double>(t) / no_l2_horizon);
    // The instances come in random order: each one's record, its item offsets, its candidate
    // list and its attribute ids are cache misses in a chain. Prefetched 8, 4 and 2 steps
    // ahead, the chains of consecutive steps overlap.
    if (j + 8 < n) __builtin_prefetch(&instances[visit[j + 8]]);
    if (j + 4 < n) {
      const LocalInstance& ahead = instances[visit[j + 4]];
      if (looked_up) __builtin_prefetch(&data.item_offsets[ahead.item]);
      if (lists && ahead.candidates >= 0) __builtin_prefetch(&lists->offsets[ahead.candidates]);
      if (cache) cache->prefetch_index(visit[j + 4]);
      if (ranges) __builtin_prefetch(ranges->offset_of(visit[j + 4]));
    }
    if (j + 2 < n) {
      const LocalInstance& ahead = instances[visit[j + 2]];
      if (looked_up) __builtin_prefetch(&data.attribute_ids[data.item_offsets[ahead.item]]);
      if (lists && ahead.candidates >= 0) {
        const std::size_t at = lists->offsets[ahead.candidates];
        __builtin_prefetch(&lists->classes[at]);
        if (!lists->base.empty()) __builtin_prefetch(&lists->base[at]);
      }
    }
    if (ranges) {
      // Cached ranges: the ranges of the instance 2 steps ahead, and the classes and weights of
      // the next one's (its ranges are in cache; a range spans up to K weights).
      if (j + 2 < n) {
        const char* at = reinterpret_cast<const char*>(ranges->begin(visit[j + 2]));
        const std::size_t bytes = sizeof(CachedRange) * static_cast<std::size_t>(
            ranges->end(visit[j + 2]) - ranges->begin(visit[j + 2]));
        for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(at + o);
      }
      if (j + 1 < n) {
        const double* w = state.weights();
        const int32_t* classes = shape.features->classes.data();
        for (const CachedRange* r = ranges->begin(visit[j + 1]), *e = ranges->end(visit[j + 1]);
             r != e; ++r) {
          __builtin_prefetch(w + r->first);
          __builtin_prefetch(w + r->last - 1);
          __builtin_prefetch(classes + r->first);
          __builtin_prefetch(classes + r->last - 1);
        }
      }
    } else if (cache) {
      // Cached listed features: the entries of the instance 2 steps ahead, and the weights of
      // the next one's (its entries are in cache).
      if (j + 2 < n && cache->has(visit[j + 2])) {
        const char* at = reinterpret_cast<const char*>(cache->begin(visit[j + 2]));
        const std::size_t bytes = sizeof(ListedEntry) * cache->size(visit[j + 2]);
        for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(at + o);
      }
      if (j + 1 < n && cache->has(visit[j + 1])) {
        const ListedEntry* e = cache->begin(visit[j + 1]);
        const double* w = state.weights();
        for (std::size_t k = 0, m = cache->size(visit[j + 1]); k < m; ++k) __builtin_prefetch(w + e[k].f());
      }
    } else if (j + 1 < n) {  // the next instance's feature offsets (its attribute ids are in cache)
      const LocalInstance& next = instances[visit[j + 1]];
      for (int32_t k = 0; k < next.span; ++k) {
        const std::size_t shift = static_cast<std::size_t>(k) * shape.A;
        for (std::size_t e = item_offsets[next.item + k]; e < item_offsets[next.item + k + 1]; ++e)
          __builtin_prefetch(offsets + ids[e] + shift);
      }
    }
    loss += state.step(instances[visit[j]], eta, visit[j]);
  }
  return loss;
}

/*
 * The held items freed as a cache is built from them in instance order (RangeCache's `built`):
 * once instances [0, i) are cached, the pages that hold only the items before instance i's
 * first item are given back to the system (madvise; they read as zeros after, and nothing
 * reads them: the caller drops the items right after the build). The held instances come in
 * item order; if they did not, nothing is freed. On CoNLL-2000 x16 at 2 ranks the unary SGD's
 * set-up held about 200 MB of items and the 270 MB cache together.
 */
class ItemPages {
 public:
  ItemPages(Dataset& data, const std::vector<LocalInstance>& instances)
      : data_(&data), instances_(&instances) {
    for (std::size_t h = 1; h < instances.size() && ordered_; ++h)
      ordered_ = instances[h - 1].item <= instances[h].item;
  }
  void operator()(std::size_t done) {
    if (!ordered_) return;
    const std::size_t items = data_->item_offsets.size() - 1;
    const std::size_t item = done < instances_->size() ? (*instances_)[done].item : items;
    release(data_->item_offsets.data(), item, offsets_freed_);
    release(data_->attribute_ids.data(), static_cast<std::size_t>(data_->item_offsets[item]),
            ids_freed_);
  }

 private:
  // The whole pages of `array`'s first n elements not given back yet.
  template <typename T>
  static void release(T* array, std::size_t n, std::uintptr_t& freed) {
    static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(array);
    const std::uintptr_t first = std::max(freed, (begin + page - 1) / page * page);
    const std::uintptr_t last = (begin + n * sizeof(T)) / page * page;
    if (last <= first) return;
    ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
    freed = last;
  }

  Dataset* data_;
  const std::vector<LocalInstance>* instances_;
  bool ordered_ = true;
  std::uintptr_t offsets_freed_ = 0, ids_freed_ = 0;
};

}  // namespace

ShardedSgd::ShardedSgd(const Dataset& data, const std::vector<LocalInstance>& instances,
                       const SoftmaxModelShape& shape, const ShardedSgdOptions& options,
                       const std::vector<double>& w0, int threads, Communicator* ranks,
                       bool spread, const std::function<void()>& released)
    : data_(&data), instances_(&instances), shape_(shape), options_(options) {
  spread = spread && ranks && ranks->size() > 1;
  std::size_t N = instances.size();
  if (spread) {
    std::vector<uint64_t> total{N};
    ranks->allreduce(total, Communicator::Op::kSum);
    N = static_cast<std::size_t>(total[0]);
  }
  // At most 4,096 shards (--shards' range; the mix counts them in 16 bits).
  const std::size_t S = std::max<std::size_t>(
      1, std::min({options.shards, std::max<std::size_t>(N, 1), std::size_t{4096}}));
  options_.mixes = std::max<std::size_t>(1, options.mixes);
  order_.resize(N);
  std::iota(order_.begin(), order_.end(), 0);
  std::mt19937_64 rng(options.seed);
  std::shuffle(order_.begin(), order_.end(), rng);
  for (std::size_t s = 0; s <= S; ++s) shard_bounds_.push_back(N * s / S);
  visits_.resize(S);
  visit_epoch_.assign(S, 0);
  if (N == 0) return;
  lambda_ = 2.0 * options.c2 / static_cast<double>(N);
  // The sample: the first 1,000 instances of the permutation that have a loss at all (an
  // instance whose candidate list is its gold class alone only decays the weights: a sample of
  // mostly such instances, as the stacked pairwise factor has, scores too few steps and picked
  // 2x the rate that keeps its passes stable).
  std::vector<std::size_t> sample;
  if (spread) {
    sample = spread_instances(data, instances, *ranks);
    if (released) released();  // `data`, `instances` and `shape`'s lists are not read below
  } else {
    for (std::size_t j = 0; j < N && sample.size() < 1000; ++j)
      if (!only_gold(shape, instances[order_[j]])) sample.push_back(order_[j]);
    if (sample.empty())
      sample.assign(order_.begin(), order_.begin() + std::min<std::size_t>(N, 1000));
  }
  // In one process the caches are built first and the calibration steps and scores its sample
  // from them (the same sums: pairwise set-up 0.097 -> s on CoNLL-2000); over ranks the
  // held items may go as the range cache is built, so the calibration reads them before.
  const bool cached_calibration = !spread;
  if (cached_calibration) build_caches(spread, threads);
  eta0_ = calibrate_rate(*data_, *instances_, sample, shape_, w0, options.c2, N, threads, ranks,
                         cache_.get(), range_cache_.get());
  find_step_reads();  // (reads the sample's items: before they go below)
  if (!cached_calibration) build_caches(spread, threads);
}

void ShardedSgd::build_caches(bool spread, int threads) {
  if (shape_.candidates && !shape_.mask && data_->unit_values)
    cache_ = std::make_unique<ListedFeatureCache>(*data_, *instances_, shape_, threads);
  if (!shape_.candidates && !shape_.mask && data_->unit_values) {
    // Over ranks, no step reads an instance's items once its ranges are cached (every one is:
    // keep_read_items below keeps none), so the held items are freed behind the build.
    std::function<void(std::size_t)> built;
    if (spread) built = ItemPages(held_->data, held_->instances);
    range_cache_ = std::make_unique<RangeCache>(*data_, *instances_, shape_, threads, built);
  }
  if (spread && (cache_ || range_cache_)) keep_read_items();
}

ShardedSgd::~ShardedSgd() = default;

const std::size_t* ShardedSgd::part(std::size_t s, int epoch, std::size_t round,
                                    std::size_t& size, std::size_t& first_step) const {
  const std::size_t begin = shard_bounds_[s], n = shard_bounds_[s + 1] - begin;
  const std::size_t M = mixes();
  // The shard's order for the epoch, shuffled once (the parts of one shard never run
  // concurrently: one per round).
  std::vector<std::size_t>& visit = visits_[s];
  if (visit_epoch_[s] != epoch) {
    visit.assign(order_.begin() + begin, order_.begin() + begin + n);
    std::mt19937_64 rng(stream_seed(options_.seed, s, static_cast<uint64_t>(epoch)));
    std::shuffle(visit.begin(), visit.end(), rng);
    visit_epoch_[s] = epoch;
  }
  const std::size_t lo = n * round / M, hi = n * (round + 1) / M;
  first_step = static_cast<std::size_t>(epoch - 1) * n + lo;
  size = hi - lo;
  return visit.data() + lo;
}

void ShardedSgd::train_part(std::size_t s, int epoch, std::size_t round, double* v,
                            const double* z, double scale, std::vector<uint64_t>& touched,
                            ShardUpdate& out, const std::atomic<bool>* stop) const {
  std::size_t t0 = 0, size = 0;
  const std::size_t* visit = part(s, epoch, round, size, t0);
  const std::size_t n = shard_bounds_[s + 1] - shard_bounds_[s];
  out.clear();
  SgdState state(*data_, shape_, v, lambda_, scale, touched.data(), cache_.get(),
                 range_cache_.get());
  out.loss = run_steps(*data_, *instances_, shape_, visit, size, t0, eta0_, lambda_, n,
                       state, stop);
  out.decay = state.decay();
  std::size_t round_size = 0;  // instances of this round over all shards
  for (std::size_t q = 0; q < shards(); ++q) {
    const std::size_t m = shard_bounds_[q + 1] - shard_bounds_[q];
    round_size += m * (round + 1) / mixes() - m * round / mixes();
  }
  out.share = round_size ? static_cast<double>(size) / static_cast<double>(round_size) : 0.0;
  // The updated weights in increasing order, their values, and v restored from z there: the
  // ids first, then the values with v and z prefetched 16 weights ahead (z is not in cache).
  const double final_scale = state.scale();
  for (std::size_t word = 0; word < touched.size(); ++word) {
    uint64_t bits = touched[word];
    if (!bits) continue;
    touched[word] = 0;
    while (bits) {
      out.index.push_back(static_cast<uint32_t>(word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits))));
      bits &= bits - 1;
    }
  }
  const std::size_t n_updated = out.index.size();
  out.value.resize(n_updated);
  const uint32_t* index = out.index.data();
  double* value = out.value.data();
  constexpr std::size_t kAhead = 16;
  for (std::size_t i = 0; i < n_updated; ++i) {
    if (i + kAhead < n_updated) {
      __builtin_prefetch(z + index[i + kAhead]);
      __builtin_prefetch(v + index[i + kAhead], 1);
    }
    const uint32_t d = index[i];
    value[i] = final_scale * v[d];
    v[d] = z[d];
  }
  if (state.rescaled()) std::copy(z, z + dimension(), v);
}

double ShardedSgd::train_shard(std::size_t s, int epoch, double* w,
                               const std::atomic<bool>* stop) const {
  const std::size_t begin = shard_bounds_[s], n = shard_bounds_[s + 1] - begin;
  std::vector<std::size_t> visit(order_.begin() + begin, order_.begin() + begin + n);
  std::mt19937_64 rng(stream_seed(options_.seed, s, static_cast<uint64_t>(epoch)));
  std::shuffle(visit.begin(), visit.end(), rng);
  SgdState state(*data_, shape_, w, lambda_, 1.0, nullptr, cache_.get(), range_cache_.get());
  const double loss = run_steps(*data_, *instances_, shape_, visit.data(), n,
                                static_cast<std::size_t>(epoch - 1) * n, eta0_, lambda_, n,
                                state, stop);
  state.rescale();
  return loss;
}

}  // namespace septa::crf
