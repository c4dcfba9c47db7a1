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
#include <ctime>
#include <mutex>
#include <numeric>
#include <random>

#include "crf/io/binary_io.h"
#include "crf/optim/huge_pages.h"
#include "crf/optim/listed_cache.h"
#include "crf/optim/only_gold.h"
#include "crf/optim/range_cache.h"
#include "crf/optim/sgd_calibrate.h"
#include "crf/optim/sgd_state.h"
#include "crf/optim/shard_mix.h"
#include "crf/optim/touched_bits.h"
#include "crf/parallel/instance_exchange.h"
#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

// A seed for (seed, shard, epoch) streams: splitmix64 of the combination.
uint64_t stream_seed(uint64_t seed, uint64_t shard, uint64_t epoch) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + shard * 0xBF58476D1CE4E5B9ULL + epoch * 0x94D049BB133111EBULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// With SEPTA_SGD_PROFILE set, the set-up's parts (ShardedSgd's constructor), one line each:
// wall time, the calling thread's CPU and the process's CPU (all threads) since the last one.
class SetUpProfile {
 public:
  SetUpProfile() { mark(wall_, own_, all_); }
  void stage(const char* name) {
    if (!on_) return;
    double wall, own, all;
    mark(wall, own, all);
    std::fprintf(stderr, "sgd set-up: %-11s wall %.4f s  this thread %.4f s  cpu %.4f s\n", name,
                 wall - wall_, own - own_, all - all_);
    wall_ = wall;
    own_ = own;
    all_ = all;
  }

 private:
  static void mark(double& wall, double& own, double& all) {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    all = static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    own = thread_cpu_seconds();
    wall = now_seconds();
  }
  bool on_ = std::getenv("SEPTA_SGD_PROFILE") != nullptr;
  double wall_ = 0.0, own_ = 0.0, all_ = 0.0;
};

// Runs SGD over the instances `visit` (step count of the first: t0) with `state`.
double run_steps(const Dataset& data, const LocalInstance* instances,
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
        const char* at = static_cast<const char*>(ranges->data_of(visit[j + 2]));
        const std::size_t bytes = ranges->bytes_of(visit[j + 2]);
        for (std::size_t o = 0; o < bytes; o += 64) __builtin_prefetch(at + o);
      }
      if (j + 1 < n) {
        const double* w = state.weights();
        const int32_t* classes = shape.features->classes.data();
        if (ranges->masked()) {
          // No class is read; each range's first weight line only (the second line too, as
          // below, cost 13% of the unary steps on the Xeon: the prefetches filled the miss
          // buffers; none at all was as fast as this).
          for (const MaskedRange* r = ranges->masked_begin(visit[j + 1]),
                                  *e = ranges->masked_end(visit[j + 1]);
               r != e; ++r)
            __builtin_prefetch(w + r->first);
        } else if (ranges->wide()) {
          for (const WideMaskedRange* r = ranges->wide_begin(visit[j + 1]),
                                      *e = ranges->wide_end(visit[j + 1]);
               r != e; ++r)
            __builtin_prefetch(w + r->first);
        } else {
          for (const CachedRange* r = ranges->begin(visit[j + 1]), *e = ranges->end(visit[j + 1]);
               r != e; ++r) {
            __builtin_prefetch(w + r->first);
            __builtin_prefetch(w + r->last - 1);
            __builtin_prefetch(classes + r->first);
            __builtin_prefetch(classes + r->last - 1);
          }
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
  SetUpProfile profile;
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
  /*
   * The shards: order_ holds the instances of each of the P = options.parts contiguous parts of
   * the data ([N p / P, N (p+1) / P), in the training data's order) in a seeded random order,
   * part after part, and shard s is the slice [N s / S, N (s+1) / S) of order_: with S a
   * multiple of P, a random spread of the instances of one part. Over R ranks, rank q trains
   * the shards [S q / R, S (q+1) / R): when R divides P, those of the part(s) it read (the
   * file's blocks and the parts both cut it in equal shares, of bytes and of instances), so
   * that only the remainder at the cuts moves (with the default P = 1, the shards spread over
   * all the data: half of the instances move at 2 ranks, 102 and 143 MB per rank on CoNLL-2000
   * x16). A part's order is its instances' order in one seeded permutation of all of them
   * (which also gives the samples, spread over the whole data): P = 1 is that permutation.
   * P > 1 costs accuracy where the data's order groups related sentences (docs/mpi.md:
   * CoNLL-2003 NER dev F1 -0.12 at P = 2 or 16, chunking and POS unchanged).
   */
  std::vector<std::size_t> permutation(N);  // [N]
  std::iota(permutation.begin(), permutation.end(), 0);
  {
    std::mt19937_64 rng(options.seed);
    std::shuffle(permutation.begin(), permutation.end(), rng);
  }
  order_.resize(N);
  {
    const std::size_t P = std::max<std::size_t>(1, std::min(options.parts, std::max<std::size_t>(N, 1)));
    std::vector<std::size_t> at(P + 1);  // [P+1] next place of each part in order_, then the end
    for (std::size_t p = 0; p <= P; ++p) at[p] = N * p / P;
    for (std::size_t g : permutation) {
      std::size_t p = g * P / N;  // the part whose [at[p], N (p+1) / P) holds g
      while (p + 1 < P && N * (p + 1) / P <= g) ++p;
      while (p > 0 && N * p / P > g) --p;
      order_[at[p]++] = g;
    }
  }
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
    sample = spread_instances(data, instances, permutation, *ranks);
    if (released) released();  // `data`, `instances` and `shape`'s lists are not read below
  } else {
    for (std::size_t j = 0; j < N && sample.size() < 1000; ++j)
      if (!only_gold(shape, instances[permutation[j]])) sample.push_back(permutation[j]);
    if (sample.empty())
      sample.assign(permutation.begin(), permutation.begin() + std::min<std::size_t>(N, 1000));
    const std::size_t M = step_sample_size();
    for (std::size_t j = 0; j < M; ++j) step_sample_.push_back(permutation[j * N / M]);
  }
  std::vector<std::size_t>().swap(permutation);
  // The caches are built first and the calibration steps and scores its sample from them (the
  // same sums, bit for bit): in one process, and over ranks for the listed cache (the stacked
  // pairwise factor), which leaves the held items in place until finish_caches (CoNLL-2000, 2
  // ranks: the pairwise calibration's 4 rates per rank took 0.036 s of CPU uncached, about 0.011 s
  // cached). Over ranks the range cache frees the held items behind its build, so there the
  // calibration and find_step_reads read them before it.
  const bool cached_calibration = !spread || (shape_.candidates && !shape_.mask);
  profile.stage("order");  // (and the exchange, spread over ranks)
  if (cached_calibration) {
    build_caches(spread, threads);
    profile.stage("caches");
  }
  eta0_ = calibrate_rate(*data_, *instances_, sample, shape_, w0, options.c2, N, threads, ranks,
                         cache_.get(), range_cache_.get());
  profile.stage("calibrate");
  find_step_reads();  // (reads the sample's items: before they go below)
  profile.stage("step reads");
  if (!cached_calibration) {
    build_caches(spread, threads);
    profile.stage("caches");
  }
  finish_caches(spread);
  profile.stage("finish");
}

void ShardedSgd::build_caches(bool spread, int threads) {
  if (shape_.candidates && !shape_.mask && data_->unit_values)
    cache_ = std::make_unique<ListedFeatureCache>(*data_, *instances_, shape_, threads);
  if (!shape_.candidates && data_->unit_values) {
    // Over ranks, no step reads an instance's items once its ranges are cached (every one is:
    // keep_read_items keeps none), so the held items are freed behind the build.
    std::function<void(std::size_t)> built;
    if (spread) built = ItemPages(held_->data, held_->instances);
    range_cache_ = std::make_unique<RangeCache>(*data_, *instances_, shape_, threads, built);
  }
}

void ShardedSgd::finish_caches(bool spread) {
  if (!range_cache_) std::vector<uint32_t>().swap(own_held_);
  if (spread && (cache_ || range_cache_)) keep_read_items();
  // The records of the instances the steps visit in random order.
  // The steps read the instance records at random: a copy on huge pages (+32 bytes per
  // instance while the factor trains; moving the caller's pages to huge ones, MADV_COLLAPSE,
  // cost as much as it saved).
  if (cache_ || range_cache_)
    step_instances_.assign(instances_->begin(), instances_->end());
}

const LocalInstance* ShardedSgd::step_instances() const {
  return step_instances_.empty() ? instances_->data() : step_instances_.data();
}

ShardedSgd::~ShardedSgd() = default;

std::unique_ptr<RangeCache> ShardedSgd::take_range_cache() { return std::move(range_cache_); }

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
  out.loss = run_steps(*data_, step_instances(), shape_, visit, size, t0, eta0_, lambda_, n,
                       state, stop);
  out.decay = state.decay();
  std::size_t round_size = 0;  // instances of this round over all shards
  for (std::size_t q = 0; q < shards(); ++q) {
    const std::size_t m = shard_bounds_[q + 1] - shard_bounds_[q];
    round_size += m * (round + 1) / mixes() - m * round / mixes();
  }
  out.share = round_size ? static_cast<double>(size) / static_cast<double>(round_size) : 0.0;
  // The updated weights in increasing order, their values, and v restored from z there, a
  // chunk of up to kChunk ids at a time: the ids from the bitset into a local array
  // (take_touched, with AVX-512 where there is; appended to the vector, the compiler kept
  // reloading its end and the bitset's size), then the values
  // with v and z prefetched 16 weights ahead (z is not in cache).
  const double final_scale = state.scale();
  constexpr std::size_t kChunk = 2048, kAhead = 16;
  uint32_t chunk[kChunk];  // [k] ids of this chunk
  uint64_t* bits_of = touched.data();
  const std::size_t words = touched.size();
  std::size_t n_updated = 0;
  static const bool vector_ids = have_vector_take_touched();
  // The mix's range starts (ShardUpdate::starts): range r's, once a chunk reaches its first
  // weight, from a search in that chunk (the earlier chunks' ids are all below it).
  constexpr std::size_t kRanges = ShardMix::kRanges;
  const std::size_t D = dimension();
  out.starts.resize(kRanges + 1);
  uint32_t* starts = out.starts.data();
  std::size_t next_range = 0;
  for (std::size_t word = 0; word < words;) {
    const std::size_t k = vector_ids ? take_touched_vector(bits_of, word, words, chunk, kChunk)
                                     : take_touched(bits_of, word, words, chunk, kChunk);
    if (k == 0) break;
    for (; next_range < kRanges && D * next_range / kRanges <= chunk[k - 1]; ++next_range) {
      const uint32_t first = static_cast<uint32_t>(D * next_range / kRanges);
      starts[next_range] = static_cast<uint32_t>(n_updated + (std::lower_bound(chunk, chunk + k, first) - chunk));
    }
    // (kept between rounds; every entry written below)
    if (out.value.size() < n_updated + k) out.value.resize(std::max(n_updated + k, 2 * out.value.size()));
    double* value = out.value.data() + n_updated;
    for (std::size_t i = 0; i < k; ++i) {
      if (i + kAhead < k) {
        __builtin_prefetch(z + chunk[i + kAhead]);
        __builtin_prefetch(v + chunk[i + kAhead], 1);
      }
      const uint32_t d = chunk[i];
      value[i] = final_scale * v[d];
      v[d] = z[d];
    }
    out.index.insert(out.index.end(), chunk, chunk + k);
    n_updated += k;
  }
  for (; next_range <= kRanges; ++next_range) starts[next_range] = static_cast<uint32_t>(n_updated);
  if (state.rescaled()) std::copy(z, z + dimension(), v);
}

double ShardedSgd::train_shard(std::size_t s, int epoch, double* w,
                               const std::atomic<bool>* stop) const {
  const std::size_t begin = shard_bounds_[s], n = shard_bounds_[s + 1] - begin;
  std::vector<std::size_t> visit(order_.begin() + begin, order_.begin() + begin + n);
  std::mt19937_64 rng(stream_seed(options_.seed, s, static_cast<uint64_t>(epoch)));
  std::shuffle(visit.begin(), visit.end(), rng);
  SgdState state(*data_, shape_, w, lambda_, 1.0, nullptr, cache_.get(), range_cache_.get());
  const double loss = run_steps(*data_, step_instances(), shape_, visit.data(), n,
                                static_cast<std::size_t>(epoch - 1) * n, eta0_, lambda_, n,
                                state, stop);
  state.rescale();
  return loss;
}

}  // namespace septa::crf
