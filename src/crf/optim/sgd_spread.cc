// ShardedSgd's parts for training spread over ranks: which instances each rank holds
// (spread_instances), which weights the step search reads (find_step_reads), and the items
// kept once the feature caches exist (keep_read_items). Split from sgd.cc.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "crf/optim/listed_cache.h"
#include "crf/optim/only_gold.h"
#include "crf/optim/range_cache.h"
#include "crf/optim/sgd.h"
#include "crf/parallel/instance_exchange.h"
#include "septa/error.h"

namespace septa::crf {

/*
 * Which rank needs which instance: the instance at position j of order_ belongs to the shard
 * s whose slice holds j, trained by the rank q with s in shards_of(q, R); the instances of the
 * calibration sample (the first 1,000 positions of the permutation whose instance has a loss,
 * read from the allgathered only-gold flags) and of the step search's sample (positions
 * j N / M of the permutation) go to every rank. With options.parts = P a multiple of R, rank
 * q's shards spread over the parts [P q / R, P (q+1) / R) of the data, which is about the part
 * of the file it read (the file's blocks cut it into equal shares of bytes, the parts into
 * equal shares of instances), so a rank keeps nearly all of its own instances and only the
 * remainder at the cuts and the samples move; with P = 1 about (R - 1) / R of them move. Each
 * rank marks its own instances, the ranks exchange them (exchange_instances), and order_ and
 * the samples are rewritten into held indices.
 */
std::vector<std::size_t> ShardedSgd::spread_instances(const Dataset& own_data,
                                                      const std::vector<LocalInstance>& own,
                                                      const std::vector<std::size_t>& permutation,
                                                      Communicator& ranks) {
  const std::size_t N = order_.size();
  const std::size_t R = static_cast<std::size_t>(ranks.size());
  const std::size_t me = static_cast<std::size_t>(ranks.rank());
  if (R > 64) throw OptionError("SGD over ranks: at most 64 ranks (got " + std::to_string(R) + ")");
  constexpr uint32_t kNoHeld = ~uint32_t{0};
  if (N >= kNoHeld)
    throw OptionError("SGD over ranks: at most 4,294,967,294 instances per factor (got " +
                      std::to_string(N) + ")");
  std::vector<uint64_t> first{static_cast<uint64_t>(own.size())};  // this rank's first global id
  {
    const std::vector<std::string> counts = ranks.allgather(
        std::string(reinterpret_cast<const char*>(first.data()), sizeof(uint64_t)));
    first[0] = 0;
    for (std::size_t q = 0; q < me; ++q) {
      uint64_t n;
      SEPTA_CHECK(counts[q].size() == sizeof n);
      std::memcpy(&n, counts[q].data(), sizeof n);
      first[0] += n;
    }
  }
  const std::size_t g0 = static_cast<std::size_t>(first[0]), g1 = g0 + own.size();
  // Calibration sample: positions [0, calibrated) whose instance is not only-gold.
  std::vector<char> gold_only;  // [N] (empty: no instance is)
  if (shape_.candidates && !shape_.mask) {
    std::string mine(own.size(), '\0');
    for (std::size_t i = 0; i < own.size(); ++i) mine[i] = only_gold(shape_, own[i]) ? 1 : 0;
    const std::vector<std::string> parts = ranks.allgather(std::move(mine));
    gold_only.reserve(N);
    for (const std::string& part : parts) gold_only.insert(gold_only.end(), part.begin(), part.end());
    SEPTA_CHECK(gold_only.size() == N);
  }
  std::size_t calibrated = 0, sampled = 0;
  for (; calibrated < N && sampled < 1000; ++calibrated)
    if (gold_only.empty() || !gold_only[permutation[calibrated]]) ++sampled;
  const bool fallback = sampled == 0;  // every instance only-gold: the first 1,000 positions
  if (fallback) calibrated = std::min<std::size_t>(N, 1000);
  std::vector<char>().swap(gold_only);
  const std::size_t M = step_sample_size();
  const uint64_t everyone = R == 64 ? ~uint64_t{0} : (uint64_t{1} << R) - 1;
  std::vector<uint64_t> dest(own.size(), 0);
  // (dest and, below, held_of are read at random where the shards spread over much of the
  // data, out of cache on large data: prefetched kAhead positions ahead; CoNLL-2000 x16 at 2
  // ranks, one run under load: this function's CPU outside the exchange 0.09-0.11 -> 0.08-0.10
  // s per factor and rank)
  constexpr std::size_t kAhead = 16;
  for (std::size_t q = 0; q < R; ++q) {
    const auto [s0, s1] = shards_of(q, R);
    for (std::size_t j = shard_bounds_[s0]; j < shard_bounds_[s1]; ++j) {
      if (j + kAhead < N) {
        const std::size_t ahead = order_[j + kAhead];
        if (ahead >= g0 && ahead < g1) __builtin_prefetch(&dest[ahead - g0], 1);
      }
      const std::size_t g = order_[j];
      if (g >= g0 && g < g1) dest[g - g0] = uint64_t{1} << q;
    }
  }
  const auto to_everyone = [&](std::size_t g) {
    if (g >= g0 && g < g1) dest[g - g0] = everyone;
  };
  for (std::size_t j = 0; j < calibrated; ++j) to_everyone(permutation[j]);
  for (std::size_t k = 0; k < M; ++k) to_everyone(permutation[k * N / M]);
  held_ = std::make_unique<HeldInstances>(exchange_instances(
      own_data, own, shape_.candidates, first[0], dest, ranks));
  std::vector<uint64_t>().swap(dest);
  data_ = &held_->data;
  instances_ = &held_->instances;
  if (shape_.candidates) shape_.candidates = &held_->candidates;
  // Global id -> held index (the held instances come in arrival order): 4 bytes per instance
  // of the factor, for the few moments of the rewrite.
  std::vector<uint32_t> held_of(N, kNoHeld);  // [N]
  for (std::size_t h = 0; h < held_->global.size(); ++h) {
    SEPTA_CHECK(held_->global[h] < N && held_of[held_->global[h]] == kNoHeld);
    held_of[held_->global[h]] = static_cast<uint32_t>(h);
    if (held_->global[h] < g0 || held_->global[h] >= g1) ++received_;
  }
  std::vector<uint64_t>().swap(held_->global);
  // (with P a multiple of R this rank holds nearly all it read; else about 1/R of it, and
  // take_own_cached hands nothing over)
  if (options_.parts % R == 0)
    own_held_.assign(held_of.begin() + static_cast<std::ptrdiff_t>(g0),
                     held_of.begin() + static_cast<std::ptrdiff_t>(g1));  // (kNoHeld = kNotCached)
  const auto held_index = [&](std::size_t g) {
    if (held_of[g] == kNoHeld)
      throw InternalError("SGD over ranks: instance " + std::to_string(g) + " not held by rank " +
                          std::to_string(me));
    return static_cast<std::size_t>(held_of[g]);
  };
  std::vector<std::size_t> sample;
  for (std::size_t j = 0; j < calibrated; ++j) {
    const std::size_t local = held_index(permutation[j]);
    if (fallback || !only_gold(shape_, held_->instances[local])) sample.push_back(local);
  }
  step_sample_.resize(M);
  for (std::size_t k = 0; k < M; ++k) step_sample_[k] = held_index(permutation[k * N / M]);
  const auto [s0, s1] = shards_of(me, R);
  const std::size_t j0 = shard_bounds_[s0], j1 = shard_bounds_[s1];
  std::fill(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(j0), kNotHeld);
  for (std::size_t j = j0; j < j1; ++j) {
    if (j + kAhead < j1) __builtin_prefetch(&held_of[order_[j + kAhead]]);
    order_[j] = held_index(order_[j]);
  }
  std::fill(order_.begin() + static_cast<std::ptrdiff_t>(j1), order_.end(), kNotHeld);
  return sample;
}

void ShardedSgd::find_step_reads() {
  const std::size_t M = step_sample_size(), K = shape_.K;
  const SparseFeatures& features = *shape_.features;
  const ItemArrays items = ItemArrays::of(*data_);
  std::vector<std::pair<std::size_t, std::size_t>> reads;
  for (std::size_t j = 0; j < M; ++j) {
    const LocalInstance& instance = (*instances_)[step_sample_[j]];
    if (only_gold(shape_, instance)) continue;  // (not scored)
    for (int32_t k = 0; k < instance.span; ++k) {
      const std::size_t item = instance.item + static_cast<std::size_t>(k);
      for (std::size_t e = items.item_offsets[item]; e < items.item_offsets[item + 1]; ++e) {
        const std::size_t a = static_cast<std::size_t>(items.ids[e]) + static_cast<std::size_t>(k) * shape_.A;
        if (features.offsets[a] < features.offsets[a + 1])
          reads.emplace_back(features.offsets[a], features.offsets[a + 1]);
      }
    }
    if (shape_.R > 0) {
      const std::size_t dense = features.size() + static_cast<std::size_t>(instance.context) * K;
      reads.emplace_back(dense, dense + K);
    }
  }
  std::sort(reads.begin(), reads.end());
  step_reads_.clear();
  for (const auto& r : reads) {
    if (!step_reads_.empty() && r.first <= step_reads_.back().second)
      step_reads_.back().second = std::max(step_reads_.back().second, r.second);
    else
      step_reads_.push_back(r);
  }
  step_reads_.shrink_to_fit();
}

/*
 * Spread over ranks, once the features are cached (ListedFeatureCache, RangeCache): a step, or
 * the step search, on a cached instance or an only-gold one never reads the instance's items
 * (nor does run_steps' prefetching then), so the held items shrink to those of the instances
 * that still read them (uncached ones with a loss; usually none). The other instances point at
 * item 0. On CoNLL-2000 at 2 ranks this drops each rank's held items (about 13 MB for the
 * pairwise factor, 7 MB for the unary one) for the whole SGD.
 */
void ShardedSgd::keep_read_items() {
  HeldInstances& held = *held_;
  std::vector<LocalInstance>& instances = held.instances;
  const std::size_t H = instances.size();
  const bool ranges = range_cache_ && !range_cache_->empty();
  std::vector<char> keep(H, 0);  // [H] reads its items
  for (std::size_t h = 0; h < H; ++h) {
    const LocalInstance& instance = instances[h];
    const bool listed = shape_.candidates && instance.candidates >= 0;
    const bool cached = listed ? cache_ && cache_->has(h) : ranges;
    keep[h] = !cached && !only_gold(shape_, instance);
  }
  const Dataset& all = held.data;
  constexpr uint32_t kDropped = ~uint32_t{0};
  std::vector<uint32_t> moved(all.item_offsets.size() - 1, kDropped);  // [items] new item id
  Dataset kept;
  kept.unit_values = true;
  kept.edge_offsets.clear();
  for (std::size_t h = 0; h < H; ++h) {
    if (!keep[h]) continue;
    for (int32_t k = 0; k < instances[h].span; ++k) {
      const std::size_t item = instances[h].item + static_cast<std::size_t>(k);
      if (moved[item] != kDropped) continue;
      moved[item] = static_cast<uint32_t>(kept.item_offsets.size() - 1);
      kept.attribute_ids.insert(kept.attribute_ids.end(),
                                all.attribute_ids.begin() + static_cast<std::ptrdiff_t>(all.item_offsets[item]),
                                all.attribute_ids.begin() + static_cast<std::ptrdiff_t>(all.item_offsets[item + 1]));
      kept.item_offsets.push_back(kept.attribute_ids.size());
    }
  }
  if (kept.item_offsets.size() == 1) kept.item_offsets.push_back(0);  // item 0: no attributes
  for (std::size_t h = 0; h < H; ++h) {
    if (!keep[h]) {
      instances[h].item = 0;
      continue;
    }
    // a kept instance's items stay consecutive (the held instances come in item order)
    const uint32_t first = moved[instances[h].item];
    for (int32_t k = 0; k < instances[h].span; ++k)
      SEPTA_CHECK(first != kDropped && moved[instances[h].item + static_cast<std::size_t>(k)] ==
                                           first + static_cast<uint32_t>(k));
    instances[h].item = first;
  }
  kept.attribute_ids.shrink_to_fit();
  kept.item_offsets.shrink_to_fit();
  held.data = std::move(kept);
}
}  // namespace septa::crf
