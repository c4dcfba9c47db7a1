#include "crf/algorithms/local_training.h"

#include "crf/features/bit_count.h"
#include "crf/io/binary_io.h"
#include "crf/optim/huge_pages.h"
#include "crf/optim/range_cache.h"
#include "crf/optim/sgd.h"
#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include <sys/resource.h>

namespace septa::crf {

std::vector<LocalInstance> node_instances(const Dataset& data) {
  std::vector<LocalInstance> out;
  out.reserve(data.items());
  for (std::size_t n = 0; n < data.size(); ++n)
    for (std::size_t i = data.sequence_offsets[n]; i < data.sequence_offsets[n + 1]; ++i)
      out.push_back({i, 1, data.labels[i], 0, static_cast<float>(data.weights[n])});
  return out;
}

std::vector<LocalInstance> edge_instances(const Dataset& data, const std::vector<int32_t>& pair_class,
                                          std::size_t L) {
  std::vector<LocalInstance> out;
  out.reserve(data.items());
  for (std::size_t n = 0; n < data.size(); ++n)
    for (std::size_t i = data.sequence_offsets[n]; i + 1 < data.sequence_offsets[n + 1]; ++i)
      out.push_back({i, 2, pair_class[data.labels[i] * L + data.labels[i + 1]], 0,
                     static_cast<float>(data.weights[n])});
  return out;
}

LabelPairs observed_pairs(const Dataset& data, std::size_t L) {
  LabelPairs pairs;
  pairs.pair_class.assign(L * L, -1);
  for (std::size_t n = 0; n < data.size(); ++n)
    for (std::size_t i = data.sequence_offsets[n]; i + 1 < data.sequence_offsets[n + 1]; ++i) {
      int32_t& k = pairs.pair_class[data.labels[i] * L + data.labels[i + 1]];
      if (k < 0) {
        k = static_cast<int32_t>(pairs.first.size());
        pairs.first.push_back(data.labels[i]);
        pairs.second.push_back(data.labels[i + 1]);
      }
    }
  return pairs;
}

LabelPairs observed_pairs_across(const Dataset& data, std::size_t L, Communicator& comm) {
  const LabelPairs mine = observed_pairs(data, L);
  ByteWriter out;
  out.vec(mine.first);
  out.vec(mine.second);
  const std::vector<std::string> parts = comm.allgather(std::move(out.bytes()));
  LabelPairs pairs;
  pairs.pair_class.assign(L * L, -1);
  for (std::size_t q = 0; q < parts.size(); ++q) {
    ByteReader in(parts[q].data(), parts[q].size(), "rank " + std::to_string(q) + " label pairs");
    const std::vector<int32_t> first = in.vec<int32_t>(), second = in.vec<int32_t>();
    SEPTA_CHECK(in.at_end() && first.size() == second.size());
    for (std::size_t i = 0; i < first.size(); ++i) {
      SEPTA_CHECK(first[i] >= 0 && second[i] >= 0 && static_cast<std::size_t>(first[i]) < L &&
                  static_cast<std::size_t>(second[i]) < L);
      int32_t& k = pairs.pair_class[static_cast<std::size_t>(first[i]) * L + second[i]];
      if (k < 0) {
        k = static_cast<int32_t>(pairs.first.size());
        pairs.first.push_back(first[i]);
        pairs.second.push_back(second[i]);
      }
    }
  }
  return pairs;
}

/*
 * The (attribute, class) occurrences grouped by attribute in two passes over the instances (a
 * count per attribute, then each gold class into its attribute's bucket): no list of
 * occurrence pairs to build and sort (SparseFeaturesBuilder), the same features.
 */
namespace {

/*
 * instance_features on `threads` threads, as a radix pass: P fixed ranges of the attributes.
 *   1. per block of instances, its occurrences per range (count [B][P]);
 *   2. each block writes its occurrences into their range's segment (range major, block order
 *      within a range), each as one 32-bit word: (attribute - range start) << bits | class;
 *   3. each range groups its segment by attribute (counting sort over the range's attributes)
 *      and builds its features (features_from_buckets);
 * then the ranges' features are concatenated in range order. An attribute's features depend
 * only on the multiset of its classes, so the result is the serial one for any thread count,
 * in the serial build's memory (4 bytes per occurrence). Returns false, building nothing, when
 * a range's attributes and the classes do not fit in 32 bits.
 */
bool instance_features_parallel(const Dataset& data, const std::vector<LocalInstance>& instances,
                                std::size_t A, std::size_t K, int max_span, int min_freq,
                                bool all_classes, int threads, SparseFeatures& out) {
  const std::size_t A_span = A * static_cast<std::size_t>(max_span), N = instances.size();
  constexpr std::size_t P = 256, B = 64;  // attribute ranges, instance blocks
  const auto bits_of = [](std::size_t n) {  // bits that hold 0..n-1
    int bits = 0;
    while (bits < 64 && (std::size_t{1} << bits) < n) ++bits;
    return bits;
  };
  const int class_bits = bits_of(K), attribute_bits = bits_of((A_span + P - 1) / P);
  if (class_bits + attribute_bits > 32) return false;
  // attribute a lies in range a P / A_span: range p holds [first[p], first[p+1])
  std::vector<std::size_t> first(P + 1);
  for (std::size_t p = 0; p <= P; ++p) first[p] = (p * A_span + P - 1) / P;
  const auto range_of = [&](std::size_t a) { return a * P / A_span; };
  const auto each_occurrence = [&](std::size_t b, auto&& visit) {
    for (std::size_t i = N * b / B; i < N * (b + 1) / B; ++i) {
      const LocalInstance& instance = instances[i];
      for (int32_t k = 0; k < instance.span; ++k) {
        const std::size_t item = instance.item + k, shift = k * A;
        for (std::size_t e = data.item_offsets[item]; e < data.item_offsets[item + 1]; ++e)
          visit(data.attribute_ids[e] + shift, instance.gold);
      }
    }
  };
  std::vector<std::size_t> at(B * P, 0);  // [B][P] counts, then write positions
  parallel_for(B, threads, [&](std::size_t b) {
    std::size_t* count = &at[b * P];
    each_occurrence(b, [&](std::size_t a, int32_t) { ++count[range_of(a)]; });
  });
  std::vector<std::size_t> segment(P + 1, 0);  // [P+1] range segments of the occurrences
  for (std::size_t p = 0, total = 0; p < P; ++p) {
    segment[p] = total;
    for (std::size_t b = 0; b < B; ++b) {
      const std::size_t n = at[b * P + p];
      at[b * P + p] = total;
      total += n;
    }
    segment[p + 1] = total;
  }
  std::vector<uint32_t> packed(segment[P]);  // [occurrences] grouped by range
  parallel_for(B, threads, [&](std::size_t b) {
    std::size_t* next = &at[b * P];
    each_occurrence(b, [&](std::size_t a, int32_t gold) {
      const std::size_t p = range_of(a);
      packed[next[p]++] = static_cast<uint32_t>(((a - first[p]) << class_bits) |
                                                static_cast<std::size_t>(gold));
    });
  });
  const uint32_t class_mask = static_cast<uint32_t>((uint64_t{1} << class_bits) - 1);
  std::vector<SparseFeatures> parts(P);
  parallel_for(P, threads, [&](std::size_t p) {
    const std::size_t n = first[p + 1] - first[p];
    std::vector<std::size_t> start(n + 1, 0);  // [n+1] bucket boundaries in the range
    for (std::size_t j = segment[p]; j < segment[p + 1]; ++j)
      ++start[(packed[j] >> class_bits) + 1];
    for (std::size_t a = 0; a < n; ++a) start[a + 1] += start[a];
    std::vector<int32_t> bucketed(start[n]);
    {
      std::vector<std::size_t> next(start.begin(), start.end() - 1);
      for (std::size_t j = segment[p]; j < segment[p + 1]; ++j)
        bucketed[next[packed[j] >> class_bits]++] = static_cast<int32_t>(packed[j] & class_mask);
    }
    parts[p] = features_from_buckets(n, K, start, bucketed, min_freq, all_classes);
  });
  std::vector<uint32_t>().swap(packed);
  out = SparseFeatures();
  out.A = A_span;
  out.K = K;
  out.offsets.assign(A_span + 1, 0);
  std::size_t F = 0;
  for (const SparseFeatures& part : parts) F += part.classes.size();
  out.classes.reserve(F);
  for (std::size_t p = 0; p < P; ++p) {
    SparseFeatures& part = parts[p];
    const uint32_t base = static_cast<uint32_t>(out.classes.size());
    for (std::size_t a = 1; a < part.offsets.size(); ++a)
      out.offsets[first[p] + a] = base + part.offsets[a];
    out.classes.insert(out.classes.end(), part.classes.begin(), part.classes.end());
    part = SparseFeatures();
  }
  return true;
}

/*
 * instance_features for min_freq <= 1 (no counts needed) and K <= 64 W: each attribute's
 * classes as a bit set [A span][W], set in one pass over the occurrences (on several threads
 * the bits are set with atomic ORs: the sets do not depend on the order), then each attribute's
 * features are its set bits in class order; with all_classes, all K classes of every attribute
 * that occurs. The same features as the counting build, which groups the occurrences by
 * attribute (a count pass, a bucket pass, a sort per bucket) to count them.
 */
template <int W>
SparseFeatures class_set_features(const Dataset& data, const std::vector<LocalInstance>& instances,
                                  std::size_t A, std::size_t K, int max_span, bool all_classes,
                                  int threads) {
  const std::size_t A_span = A * static_cast<std::size_t>(max_span), N = instances.size();
  // [A span][W] class bits, set at random: on huge pages (fewer TLB misses, as the SGD's
  // arrays), zero without a serial clearing pass (ZeroedHugeArray)
  ZeroedHugeArray<uint64_t> sets(A_span * W);
  constexpr std::size_t B = 64;                // instance blocks
  const bool atomic = threads > 1;
  parallel_for(atomic ? B : 1, threads, [&](std::size_t b) {
    const std::size_t begin = atomic ? N * b / B : 0, end = atomic ? N * (b + 1) / B : N;
    for (std::size_t i = begin; i < end; ++i) {
      const LocalInstance& instance = instances[i];
      const std::size_t word = static_cast<std::size_t>(instance.gold) >> 6;
      const uint64_t bit = uint64_t{1} << (instance.gold & 63);
      for (int32_t k = 0; k < instance.span; ++k) {
        const std::size_t item = instance.item + k, shift = k * A;
        for (std::size_t e = data.item_offsets[item]; e < data.item_offsets[item + 1]; ++e) {
          uint64_t& set = sets[(data.attribute_ids[e] + shift) * W + word];
          // Over threads, the atomic OR only when a plain read finds the bit unset: the
          // frequent attributes' sets are read shared instead of each OR taking their cache line
          // exclusive (at 16 threads the features' CPU had grown 5x over one thread's).
          if (!atomic)
            set |= bit;
          else if (!(__atomic_load_n(&set, __ATOMIC_RELAXED) & bit))
            __atomic_fetch_or(&set, bit, __ATOMIC_RELAXED);
        }
      }
    }
  });
  SparseFeatures out;
  out.A = A_span;
  out.K = K;
  out.offsets.assign(A_span + 1, 0);
  const auto features_of = [&](std::size_t a) {
    std::size_t n = 0;
    for (int j = 0; j < W; ++j) n += bit_count(sets[a * W + j]);
    return all_classes && n > 0 ? K : n;
  };
  // The offsets in blocks: each block's counts and total on all threads, the blocks' bases in
  // order, then each block's prefix sums (the calling thread alone had read every set).
  std::vector<uint32_t> block_total(B + 1, 0);  // [B+1] features of block b, then block bases
  parallel_for(B, threads, [&](std::size_t b) {
    uint32_t total = 0;
    for (std::size_t a = A_span * b / B; a < A_span * (b + 1) / B; ++a) {
      out.offsets[a + 1] = static_cast<uint32_t>(features_of(a));
      total += out.offsets[a + 1];
    }
    block_total[b + 1] = total;
  });
  for (std::size_t b = 0; b < B; ++b) block_total[b + 1] += block_total[b];
  parallel_for(B, threads, [&](std::size_t b) {
    uint32_t at = block_total[b];
    for (std::size_t a = A_span * b / B; a < A_span * (b + 1) / B; ++a)
      out.offsets[a + 1] = at += out.offsets[a + 1];
  });
  out.classes.resize(out.offsets[A_span]);
  parallel_for(B, threads, [&](std::size_t b) {
    for (std::size_t a = A_span * b / B; a < A_span * (b + 1) / B; ++a) {
      int32_t* classes = out.classes.data() + out.offsets[a];
      if (all_classes) {
        if (out.offsets[a + 1] != out.offsets[a])
          for (std::size_t k = 0; k < K; ++k) classes[k] = static_cast<int32_t>(k);
        continue;
      }
      for (int j = 0; j < W; ++j)
        for (uint64_t bits = sets[a * W + j]; bits != 0; bits &= bits - 1)
          *classes++ = 64 * j + __builtin_ctzll(bits);
    }
  });
  return out;
}

// class_set_features where it applies (min_freq <= 1, K <= 256); false otherwise.
bool class_set_build(const Dataset& data, const std::vector<LocalInstance>& instances,
                     std::size_t A, std::size_t K, int max_span, int min_freq, bool all_classes,
                     int threads, SparseFeatures& out) {
  if (min_freq > 1 || A == 0) return false;
  switch ((K + 63) / 64) {
    case 1: out = class_set_features<1>(data, instances, A, K, max_span, all_classes, threads); return true;
    case 2: out = class_set_features<2>(data, instances, A, K, max_span, all_classes, threads); return true;
    case 3: out = class_set_features<3>(data, instances, A, K, max_span, all_classes, threads); return true;
    case 4: out = class_set_features<4>(data, instances, A, K, max_span, all_classes, threads); return true;
    default: return false;
  }
}

// The serial build over instances [first, end), with each feature's count when asked.
SparseFeatures bucketed_features(const Dataset& data, const LocalInstance* first,
                                 const LocalInstance* end, std::size_t A, std::size_t K,
                                 int max_span, int min_freq, bool all_classes,
                                 std::vector<uint32_t>* counts) {
  const std::size_t A_span = A * static_cast<std::size_t>(max_span);
  std::vector<std::size_t> start(A_span + 1, 0);  // [A span + 1] bucket boundaries
  for (const LocalInstance* instance = first; instance != end; ++instance)
    for (int32_t k = 0; k < instance->span; ++k) {
      const std::size_t item = instance->item + k, shift = k * A;
      for (std::size_t e = data.item_offsets[item]; e < data.item_offsets[item + 1]; ++e)
        ++start[data.attribute_ids[e] + shift + 1];
    }
  for (std::size_t a = 0; a < A_span; ++a) start[a + 1] += start[a];
  std::vector<int32_t> bucketed(start[A_span]);  // [occurrences] classes grouped by attribute
  {
    std::vector<std::size_t> next(start.begin(), start.end() - 1);  // [A span]
    for (const LocalInstance* instance = first; instance != end; ++instance)
      for (int32_t k = 0; k < instance->span; ++k) {
        const std::size_t item = instance->item + k, shift = k * A;
        for (std::size_t e = data.item_offsets[item]; e < data.item_offsets[item + 1]; ++e)
          bucketed[next[data.attribute_ids[e] + shift]++] = instance->gold;
      }
  }
  return features_from_buckets(A_span, K, start, bucketed, min_freq, all_classes, counts);
}

}  // namespace

SparseFeatures instance_features(const Dataset& data, const std::vector<LocalInstance>& instances,
                                 std::size_t A, std::size_t K, int max_span, int min_freq,
                                 bool all_classes, int threads) {
  SparseFeatures built;
  if (class_set_build(data, instances, A, K, max_span, min_freq, all_classes, threads, built))
    return built;
  if (threads > 1 && A > 0 &&
      instance_features_parallel(data, instances, A, K, max_span, min_freq, all_classes, threads,
                                 built))
    return built;
  return bucketed_features(data, instances.data(), instances.data() + instances.size(), A, K,
                           max_span, min_freq, all_classes, nullptr);
}

SparseFeatures instance_features_across(const TrainingContext& context,
                                        const std::vector<LocalInstance>& instances,
                                        std::size_t A, std::size_t K, int max_span, int min_freq,
                                        bool all_classes, int threads) {
  if (!context.sgd_ranks || context.sgd_ranks->size() == 1)
    return instance_features(context.data, instances, A, K, max_span, min_freq, all_classes,
                             threads);
  const auto by_item = [](const LocalInstance& instance, std::size_t item) {
    return instance.item < item;
  };
  const auto first = std::lower_bound(instances.begin(), instances.end(),
                                      context.own_items.first, by_item);
  const auto end = std::lower_bound(first, instances.end(), context.own_items.second, by_item);
  // At min_freq <= 1 the merged rule needs no counts (a class is kept, and with all_classes an
  // attribute, if any rank saw it): each rank builds its classes as one process does
  // (class_set_build, where K <= 256: the same choice on every rank) and the ranks' classes are
  // united (union_features_across). CoNLL-2000, 2 ranks (load 5-7), CPU per rank, against the
  // counting build: the unary features 0.040 -> 0.015-0.016 s, the pairwise ones 0.097-0.103 ->
  // 0.060-0.067 s (0.019 and 0.067-0.074 s with the class sets merged with unit counts).
  if (min_freq <= 1) {
    SparseFeatures local;
    bool built;
    if (first == instances.begin() && end == instances.end()) {
      built = class_set_build(context.data, instances, A, K, max_span, 1, false, threads, local);
    } else {
      const std::vector<LocalInstance> own(first, end);
      built = class_set_build(context.data, own, A, K, max_span, 1, false, threads, local);
    }
    if (built)
      return union_features_across(std::move(local), A * max_span, K, all_classes,
                                   *context.sgd_ranks);
  }
  std::vector<uint32_t> counts;
  SparseFeatures local = bucketed_features(context.data, instances.data() + (first - instances.begin()),
                                           instances.data() + (end - instances.begin()), A, K,
                                           max_span, 1, false, &counts);
  return merge_features_across(std::move(local), std::move(counts), A * max_span, K, min_freq,
                               all_classes, *context.sgd_ranks);
}

void run_both(const std::function<void()>& here, const std::function<void()>& there,
              SharedProgress& shared, int threads) {
  if (threads <= 1) {
    try {
      here();
      there();
    } catch (...) {
      shared.stop = true;
      throw;
    }
    return;
  }
  std::exception_ptr there_error;
  std::thread second([&] {
    try {
      there();
    } catch (...) {
      there_error = std::current_exception();
      shared.stop = true;
    }
  });
  try {
    here();
  } catch (...) {
    shared.stop = true;
    second.join();
    throw;
  }
  second.join();
  if (there_error) std::rethrow_exception(there_error);
}

void record_two_parts(const std::string& first_name, const MinimizerResult& first,
                      const std::string& second_name, const MinimizerResult& second,
                      bool second_ran, TrainResult& result) {
  result.cancelled = first.cancelled || second.cancelled;
  result.iterations = first.iterations + second.iterations;
  result.stop_reason = first_name + ": " + first.stop_reason + "; " + second_name + ": " +
                       (second_ran ? second.stop_reason : std::string("no pairs"));
}

namespace {

// fit_sharded_sgd with the context's options (--shards, --seed), penalty c2, `epochs` passes, `mixes`,
// and progress.
MinimizerResult fit_sgd(const TrainingContext& context, const std::string& phase,
                        const std::vector<LocalInstance>& instances,
                        const SoftmaxModelShape& shape, int threads, std::vector<double>& w,
                        SharedProgress& shared, double c2, int epochs, int mixes,
                        std::unique_ptr<RangeCache>* ranges, std::vector<uint32_t>* cached) {
  const bool spread = context.spread_data && context.sgd_ranks && context.sgd_ranks->size() > 1;
  std::vector<uint64_t> count{instances.size()};  // over all ranks when spread
  if (spread) context.sgd_ranks->allreduce(count, Communicator::Op::kSum);
  if (count[0] == 0) {
    MinimizerResult result;
    result.stop_reason = "no instances";
    return result;
  }
  ShardedSgdOptions options;
  options.c2 = c2;
  options.epochs = epochs;
  options.shards = static_cast<std::size_t>(context.options.shards);
  options.mixes = static_cast<std::size_t>(mixes);
  options.parts = static_cast<std::size_t>(context.options.shard_parts);
  options.seed = context.options.seed;
  // rate calibrated from w0 (its candidate rates spread over threads and ranks)
  if (spread) release_free_memory();  // before the exchange: e.g. the previous factor's buffers
  // Spread, the own instances and data go once exchanged (before the calibration and the
  // listed-feature cache are built), and the heap gives their memory back before the caches
  // take theirs (on CoNLL-2000 x16 at 2 ranks the freed own node instances, 54 MB, had stayed
  // resident through the unary factor's set-up).
  std::function<void()> released;
  if (spread && context.released) {
    released = [&] {
      context.released();
      release_free_memory();
    };
  }
  ShardedSgd sgd(context.data, instances, shape, options, w, threads, context.sgd_ranks,
                       spread, released);
  if (spread) release_free_memory();  // the exchange's buffers
  profile_stage("SGD set-up");
  if (context.set_up) context.set_up();
  const int done = context.checkpoint ? context.checkpoint->restore(phase, w) : 0;
  if (done >= options.epochs) {
    MinimizerResult result;
    result.iterations = done;
    result.stop_reason = "epochs done (resumed)";
    return result;
  }
  EpochCallback on_epoch = [&](int epoch, double objective) {
    if (context.checkpoint && (!context.sgd_ranks || context.sgd_ranks->rank() == 0))
      context.checkpoint->record(phase, epoch, w, epoch == options.epochs);
    TrainProgress progress;
    progress.phase = phase;
    progress.iteration = epoch;
    progress.objective = objective;
    progress.active_features = shape.dimension();
    std::lock_guard<std::mutex> lock(shared.mutex);
    if (shared.stop || !context.report(progress)) shared.stop = true;
    return !shared.stop.load();
  };
  EpochCallback agreed = on_epoch;
  if (context.sgd_ranks)  // rank 0 reports and decides; every rank follows it
    agreed = [&](int epoch, double objective) {
      const bool root = context.sgd_ranks->rank() == 0;
      std::string go_on(1, root && !on_epoch(epoch, objective) ? '0' : '1');
      context.sgd_ranks->broadcast(go_on, 0);
      if (go_on[0] == '0') shared.stop = true;
      return go_on[0] == '1';
    };
  const MinimizerResult result = fit_sharded_sgd(sgd, options.epochs, options.c2, threads, w,
                                                 agreed, &shared.stop, done + 1, context.sgd_ranks);
  if (ranges) *ranges = sgd.take_range_cache();
  if (ranges && cached) *cached = sgd.take_own_cached();
  return result;
}

}  // namespace

MinimizerResult fit_local(const TrainingContext& context, const std::string& phase,
                          const std::vector<LocalInstance>& instances,
                          const SoftmaxModelShape& shape, int threads, std::vector<double>& w,
                          SharedProgress& shared, double c2, int epochs, int mixes,
                          std::unique_ptr<RangeCache>* ranges, std::vector<uint32_t>* cached) {
  if (std::isnan(c2)) c2 = context.options.c2;
  if (epochs <= 0) epochs = context.options.epochs;
  if (mixes <= 0) mixes = context.options.mixes;
  if (context.options.local_sgd)
    return fit_sgd(context, phase, instances, shape, threads, w, shared, c2, epochs, mixes, ranges,
                   cached);
  if (context.set_up) context.set_up();
  return fit_local_lbfgs(context, phase, instances, shape, threads, w, shared, c2);
}

void profile_stage(const char* stage) {
  static const bool on = std::getenv("SEPTA_SGD_PROFILE") != nullptr;
  if (!on) return;
  static std::mutex mutex;
  static double last_cpu = 0.0, last_main = 0.0, last_wall = -1.0;
  std::lock_guard<std::mutex> lock(mutex);
  const auto seconds = [](clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  const double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
  // The calling thread's share: near `cpu` where a stage runs on one thread only (the pool's
  // workers run the other slots), whatever the load on the machine.
  const double main = seconds(CLOCK_THREAD_CPUTIME_ID);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  if (last_wall < 0.0) last_wall = wall;
  long rss = -1, peak = -1;  // KB (Linux; -1 elsewhere)
  if (FILE* status = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, status)) {
      std::sscanf(line, "VmHWM: %ld", &peak);
      std::sscanf(line, "VmRSS: %ld", &rss);
    }
    std::fclose(status);
  }
  // The process's page faults and system time in the stage: first touches of new memory
  // (and frees back to the kernel) are most of a run's system time.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const long faults = usage.ru_minflt + usage.ru_majflt;
  const double sys = static_cast<double>(usage.ru_stime.tv_sec) +
                     1e-6 * static_cast<double>(usage.ru_stime.tv_usec);
  static long last_faults = 0;
  static double last_sys = 0.0;
  std::fprintf(stderr,
               "stage %-16s cpu %.3f s  this thread %.3f s  wall %.3f s  rss %ld KB  peak %ld KB"
               "  faults %ld  sys %.3f s\n",
               stage, cpu - last_cpu, main - last_main, wall - last_wall, rss, peak,
               faults - last_faults, sys - last_sys);
  last_faults = faults;
  last_sys = sys;
  last_cpu = cpu;
  last_main = main;
  last_wall = wall;
}

double factor_c2(double c2, std::size_t sequences, std::size_t instances) {
  if (instances == 0) return c2;
  return c2 * std::min(1.0, static_cast<double>(sequences) / static_cast<double>(instances));
}

MinimizerResult fit_local_lbfgs(const TrainingContext& context, const std::string& phase,
                                const std::vector<LocalInstance>& instances,
                                const SoftmaxModelShape& shape, int threads,
                                std::vector<double>& w, SharedProgress& shared, double c2) {
  SoftmaxObjective objective(context.data, instances, shape, threads);
  MinimizerOptions options = minimizer_options(context.options);
  if (!std::isnan(c2)) options.c2 = c2;
  ObjectiveFunction f = [&](const double* x, double* g) { return objective.evaluate(x, g); };
  IterationCallback callback = [&](const MinimizerIteration& it) {
    if (shared.stop) return false;
    TrainProgress progress = iteration_progress(phase, it);
    std::lock_guard<std::mutex> lock(shared.mutex);
    if (!context.report(progress)) shared.stop = true;
    return !shared.stop.load();
  };
  return minimize(f, w, options, callback);
}

}  // namespace septa::crf
