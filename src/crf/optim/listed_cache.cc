#include "crf/optim/listed_cache.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "crf/features/bit_count.h"
#include "crf/optim/only_gold.h"
#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {

namespace {

/*
 * Each attribute's features as a bit set over the K classes (K <= 64 W) with the attribute's
 * first feature: the feature of class c is first + (the set bits below c), found with no scan
 * or search of the attribute's range (which listed_visits does, reading offsets[a],
 * offsets[a + 1] and the range's classes: two or three cache misses per attribute, one here).
 * Needs each range's classes strictly increasing (SparseFeatures' order).
 */
constexpr uint32_t kTiedSet = 1u << 31;  // ClassBits::count of a tied attribute's copy

template <int W>
struct ClassBits {
  // Left unwritten on construction: class_bits writes every field of every set on the build
  // threads, so the array is not zeroed (and faulted in) first on the calling thread alone.
  ClassBits() {}
  uint32_t first;
  uint32_t count;  // features of the attribute (the range's length), kTiedSet: tied
  uint64_t bits[W];
};

// (Read at random, one per attribute of every listed instance: on huge pages, as the SGD's
// random-access arrays; on 4 KB pages most of the reads also missed the TLB.)
template <int W>
using ClassBitsArray = std::vector<ClassBits<W>, HugePageAllocator<ClassBits<W>>>;

template <int W>
bool class_bits(const SparseFeatures& features, ClassBitsArray<W>& out, int threads) {
  const std::size_t attributes = features.offsets.size() - 1;
  out.resize(attributes);
  const uint32_t* offsets = features.offsets.data();
  const int32_t* classes = features.classes.data();
  constexpr std::size_t B = 64;
  std::atomic<bool> sorted{true};
  parallel_for(B, threads, [&](std::size_t b) {
    for (std::size_t a = attributes * b / B; a < attributes * (b + 1) / B; ++a) {
      ClassBits<W>& m = out[a];
      m.first = offsets[a];
      m.count = offsets[a + 1] - offsets[a];
      for (int j = 0; j < W; ++j) m.bits[j] = 0;
      int32_t last = -1;
      for (uint32_t f = offsets[a]; f < offsets[a + 1]; ++f) {
        const int32_t c = classes[f];
        if (c <= last || c >= 64 * W) {
          sorted = false;
          return;
        }
        last = c;
        m.bits[c >> 6] |= uint64_t{1} << (c & 63);
      }
    }
  });
  return sorted;
}

// The feature of class c in m, or -1.
template <int W>
inline int64_t class_feature(const ClassBits<W>& m, uint32_t c) {
  const uint32_t word = c >> 6;
  const uint64_t bit = uint64_t{1} << (c & 63);
  if (!(m.bits[word] & bit)) return -1;
  uint32_t rank = bit_count(m.bits[word] & (bit - 1));
  for (uint32_t j = 0; j < word; ++j) rank += bit_count(m.bits[j]);
  return m.first + rank;
}

/*
 * The entries of instances [i0, i1) into `block` (offsets[i], index[i].count), those
 * listed_feature_visits would give, in its order: per attribute of the instance's items, a
 * range of at most 16 n features in class order (its scan), a longer one in list order (its
 * searches). Each entry's slot is the place of its class in the list.
 */
template <int W>
void listed_entries(const ClassBitsArray<W>& bits, const SoftmaxModelShape& shape,
                    const ItemArrays& items, const std::vector<LocalInstance>& instances,
                    std::size_t i0, std::size_t i1, std::vector<ListedEntry>& block,
                    std::size_t* offsets, uint32_t* counts, uint32_t* stepped, uint32_t none) {
  const CandidateLists& lists = *shape.candidates;
  std::pair<uint32_t, uint32_t> by_class[ListedEntry::kSlots];  // (class, slot), by class
  std::vector<const ClassBits<W>*> sets;  // [attributes of an instance]
  for (std::size_t i = i0; i < i1; ++i) {
    const LocalInstance& instance = instances[i];
    counts[i] = none;
    if (instance.candidates < 0 || only_gold(shape, instance)) continue;
    const std::size_t c = static_cast<std::size_t>(instance.candidates), at = lists.offsets[c];
    const std::size_t n = lists.offsets[c + 1] - at;
    if (n > ListedEntry::kSlots) continue;
    const int32_t* cls = &lists.classes[at];
    for (std::size_t s = 0; s < n; ++s)
      by_class[s] = {static_cast<uint32_t>(cls[s]), static_cast<uint32_t>(s)};
    std::sort(by_class, by_class + n);
    const uint32_t longest_scan = static_cast<uint32_t>(16 * n);
    const std::size_t start = block.size();
    offsets[i] = start;
    // The attributes' bit sets first, prefetched (their cache misses overlap), then read.
    sets.clear();
    for (int32_t k = 0; k < instance.span; ++k) {
      const std::size_t item = instance.item + static_cast<std::size_t>(k);
      const int32_t shift = static_cast<int32_t>(static_cast<std::size_t>(k) * shape.A);
      for (std::size_t e = items.item_offsets[item]; e < items.item_offsets[item + 1]; ++e) {
        const ClassBits<W>* m = &bits[static_cast<std::size_t>(items.ids[e] + shift)];
        __builtin_prefetch(m);
        sets.push_back(m);
      }
    }
    // The tied attributes' copies after all the others (pass 1): they take no gradient.
    for (int pass = 0; pass < 2; ++pass) {
      if (pass == 1) stepped[i] = static_cast<uint32_t>(block.size() - start);
      for (const ClassBits<W>* set : sets) {
        const ClassBits<W>& m = *set;
        if (((m.count & kTiedSet) != 0) != (pass == 1)) continue;
        const uint32_t count = m.count & ~kTiedSet;
        if (count == 0) continue;
        if (count <= longest_scan) {
          for (std::size_t s = 0; s < n; ++s) {
            const int64_t f = class_feature(m, by_class[s].first);
            if (f >= 0) block.push_back(ListedEntry{static_cast<uint32_t>(f) << 8 | by_class[s].second});
          }
        } else {
          for (std::size_t s = 0; s < n; ++s) {
            const int64_t f = class_feature(m, static_cast<uint32_t>(cls[s]));
            if (f >= 0) block.push_back(ListedEntry{static_cast<uint32_t>(f) << 8 | static_cast<uint32_t>(s)});
          }
        }
      }
    }
    counts[i] = static_cast<uint32_t>(block.size() - start);
  }
}

}  // namespace

ListedFeatureCache::ListedFeatureCache(const Dataset& data,
                                       const std::vector<LocalInstance>& instances,
                                       const SoftmaxModelShape& shape, int threads) {
  if (!shape.candidates || shape.mask || !data.unit_values ||
      shape.features->size() >= ListedEntry::kFeatures) {
    if (shape.tied) throw InternalError("tied pair features without the listed-feature cache");
    return;
  }
  const std::size_t N = instances.size();
  if (shape.tied)  // every instance with a loss must be cached
    for (const LocalInstance& instance : instances)
      if (instance.candidates >= 0 && !only_gold(shape, instance) &&
          shape.candidates->offsets[instance.candidates + 1] -
                  shape.candidates->offsets[instance.candidates] > ListedEntry::kSlots)
        throw InternalError("tied pair features with a candidate list longer than 256");
  constexpr std::size_t B = 64;
  blocks_.resize(B);
  index_.assign(N, Index{nullptr, kNone, 0});
  const ItemArrays items = ItemArrays::of(data);
  const int32_t* classes = shape.features->classes.data();
  const CandidateLists& lists = *shape.candidates;
  std::vector<std::size_t> offsets(N, 0);  // [N] first entry within the block
  if (build_from_bits(shape, items, instances, offsets, threads)) {
    for (const std::vector<ListedEntry>& block : blocks_) entries_ += block.size();
    return;
  }
  const SparseFeatures& features = *shape.features;
  parallel_for(B, threads, [&](std::size_t b) {
    std::vector<FeatureVisit> visits;
    std::vector<ListedEntry>& block = blocks_[b];
    for (std::size_t i = N * b / B; i < N * (b + 1) / B; ++i) {
      const LocalInstance& instance = instances[i];
      if (instance.candidates < 0 || only_gold(shape, instance)) continue;
      const std::size_t c = static_cast<std::size_t>(instance.candidates), at = lists.offsets[c];
      const std::size_t n = lists.offsets[c + 1] - at;
      if (n > ListedEntry::kSlots) continue;
      listed_feature_visits(shape, items, instance, visits);
      offsets[i] = block.size();
      for (const FeatureVisit& v : visits) {
        uint32_t slot = 0;
        while (lists.classes[at + slot] != classes[v.f]) ++slot;
        block.push_back(ListedEntry{v.f << 8 | slot});
      }
      index_[i].stepped = static_cast<uint32_t>(visits.size());
      if (shape.tied) {  // the tied attributes' copies of their partners' features, after
        for (int32_t k = 0; k < instance.span; ++k) {
          const std::size_t item = instance.item + static_cast<std::size_t>(k);
          for (std::size_t e = items.item_offsets[item]; e < items.item_offsets[item + 1]; ++e) {
            const int32_t p = (*shape.tied)[static_cast<std::size_t>(items.ids[e]) +
                                             static_cast<std::size_t>(k) * shape.A];
            if (p < 0) continue;
            for (std::size_t slot = 0; slot < n; ++slot) {
              const int64_t f = features.find_sorted(p, lists.classes[at + slot]);
              if (f >= 0) block.push_back(ListedEntry{static_cast<uint32_t>(f) << 8 | static_cast<uint32_t>(slot)});
            }
          }
        }
      }
      index_[i].count = static_cast<uint32_t>(block.size() - offsets[i]);
    }
    block.shrink_to_fit();
  });
  finish(offsets);
}

template <int W>
bool ListedFeatureCache::build_words(const SoftmaxModelShape& shape, const ItemArrays& items,
                                     const std::vector<LocalInstance>& instances,
                                     std::vector<std::size_t>& offsets, int threads) {
  ClassBitsArray<W> bits;
  if (!class_bits(*shape.features, bits, threads)) return false;
  if (shape.tied) {  // a tied attribute's set: its partner's, marked score-only
    const std::vector<int32_t>& tied = *shape.tied;
    SEPTA_CHECK(tied.size() == bits.size());
    for (std::size_t a = 0; a < bits.size(); ++a) {
      if (tied[a] < 0) continue;
      SEPTA_CHECK(bits[a].count == 0 && tied[static_cast<std::size_t>(tied[a])] < 0);
      bits[a] = bits[static_cast<std::size_t>(tied[a])];
      bits[a].count |= kTiedSet;
    }
  }
  const std::size_t N = instances.size(), B = blocks_.size();
  std::vector<uint32_t> counts(N), stepped(N);
  // Each block's entries go into its worker's scratch (grown once to the largest block it
  // builds), then into a block of their exact size, whose instances' index entries are set on
  // the same thread: one copy per entry, where the block's growth by doubling and its
  // shrink_to_fit copied each entry two or three times (the pairwise factor of CoNLL-2000: 21
  // MB), and no serial pass over the N instances after the build.
  std::vector<std::vector<ListedEntry>> scratches(
      std::min<std::size_t>(B, static_cast<std::size_t>(std::max(threads, 1))));  // [workers]
  parallel_for_workers(B, threads, [&](std::size_t b, std::size_t worker) {
    std::vector<ListedEntry>& scratch = scratches[worker];
    scratch.clear();
    const std::size_t i0 = N * b / B, i1 = N * (b + 1) / B;
    listed_entries(bits, shape, items, instances, i0, i1, scratch, offsets.data(), counts.data(),
                   stepped.data(), kNone);
    blocks_[b].assign(scratch.begin(), scratch.end());
    const ListedEntry* first = blocks_[b].data();
    for (std::size_t i = i0; i < i1; ++i) {
      index_[i].count = counts[i];
      index_[i].stepped = stepped[i];
      if (counts[i] != kNone) index_[i].first = first + offsets[i];
    }
  });
  return true;
}

bool ListedFeatureCache::build_from_bits(const SoftmaxModelShape& shape, const ItemArrays& items,
                                         const std::vector<LocalInstance>& instances,
                                         std::vector<std::size_t>& offsets, int threads) {
  switch ((shape.K + 63) / 64) {
    case 1: return build_words<1>(shape, items, instances, offsets, threads);
    case 2: return build_words<2>(shape, items, instances, offsets, threads);
    case 3: return build_words<3>(shape, items, instances, offsets, threads);
    case 4: return build_words<4>(shape, items, instances, offsets, threads);
    default: return false;
  }
}

void ListedFeatureCache::finish(const std::vector<std::size_t>& offsets) {
  const std::size_t N = index_.size(), B = blocks_.size();
  for (std::size_t b = 0; b < B; ++b) {
    entries_ += blocks_[b].size();
    for (std::size_t i = N * b / B; i < N * (b + 1) / B; ++i)
      if (index_[i].count != kNone) index_[i].first = blocks_[b].data() + offsets[i];
  }
}

void cached_listed_scores(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const ListedEntry* entries, std::size_t n_entries, const double* w,
                          double scale, double* scores, bool with_base) {
  const CandidateLists& lists = *shape.candidates;
  const std::size_t c = static_cast<std::size_t>(instance.candidates), at = lists.offsets[c];
  const std::size_t n = lists.offsets[c + 1] - at;
  const int32_t* cls = &lists.classes[at];
  const double* base = lists.base.empty() || !with_base ? nullptr : &lists.base[at];
  const double* dense =
      shape.R > 0 ? w + shape.features->size() + static_cast<std::size_t>(instance.context) * shape.K
                  : nullptr;
  for (std::size_t i = 0; i < n; ++i) scores[cls[i]] = dense ? dense[cls[i]] : 0.0;
  for (std::size_t e = 0; e < n_entries; ++e) scores[cls[entries[e].slot()]] += w[entries[e].f()];
  for (std::size_t i = 0; i < n; ++i) {
    if (scale != 1.0) scores[cls[i]] *= scale;
    if (base) scores[cls[i]] += base[i];
  }
}

void add_cached_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                         const ListedEntry* entries, std::size_t n_entries,
                         const double* class_gradient, double* out) {
  const CandidateLists& lists = *shape.candidates;
  const std::size_t c = static_cast<std::size_t>(instance.candidates);
  const int32_t* cls = &lists.classes[lists.offsets[c]];
  for (std::size_t e = 0; e < n_entries; ++e)
    out[entries[e].f()] += class_gradient[cls[entries[e].slot()]];
  if (shape.R > 0) {
    double* dense = out + shape.features->size() + static_cast<std::size_t>(instance.context) * shape.K;
    for (std::size_t i = lists.offsets[c]; i < lists.offsets[c + 1]; ++i)
      dense[lists.classes[i]] += class_gradient[lists.classes[i]];
  }
}

}  // namespace septa::crf
