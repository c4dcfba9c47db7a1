// The features of each instance's listed classes, found once per fit instead of once per SGD
// step (the stacked pairwise factor: its candidate lists are fixed before it trains).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "crf/objectives/softmax_objective.h"
#include "crf/optim/huge_pages.h"

namespace septa::crf {

// One feature of a listed class: feature id f and the place of its class in the instance's
// candidate list, packed as f * 256 + slot.
struct ListedEntry {
  static constexpr uint32_t kSlots = 256;          // longest list cached
  static constexpr uint32_t kFeatures = 1u << 24;  // F below this
  uint32_t packed;
  uint32_t f() const { return packed >> 8; }
  uint32_t slot() const { return packed & 255; }
};

/*
 * For every instance with a candidate list (and no mask) that has a loss (not only gold), the
 * visits softmax_listed_scores finds, in its order, with their classes: a step then reads one
 * contiguous run of entries instead of the chain attribute ids -> feature ranges -> class scans
 * or searches (each a cache miss after the last; 17% of a one-thread run of -a separate on
 * CoNLL-2000 went to finding them again every step). Built only for unit-valued data
 * (Dataset::unit_values: every visit's value is 1, so w * 1 = w and the sums are the same bit
 * for bit) with F < 2^24, and for lists of at most 256 classes; empty otherwise. 4 bytes per
 * entry (CoNLL-2000's pairwise factor: 5.3 million entries, 21 MB). With shape.tied, a tied
 * attribute's entries are its partner's, after all others: they are scored (size) but take no
 * gradient (stepped: the entries before them); every instance with a loss must then be cached
 * (InternalError otherwise: the looked-up paths know no ties).
 */
class ListedFeatureCache {
 public:
  ListedFeatureCache() = default;
  // Instances [N]; built in 64 fixed blocks on `threads` threads (the entries do not depend on
  // the blocks or the threads).
  ListedFeatureCache(const Dataset& data, const std::vector<LocalInstance>& instances,
                     const SoftmaxModelShape& shape, int threads);

  bool has(std::size_t i) const { return i < index_.size() && index_[i].count != kNone; }
  const ListedEntry* begin(std::size_t i) const { return index_[i].first; }
  std::size_t size(std::size_t i) const { return index_[i].count; }
  std::size_t stepped(std::size_t i) const { return index_[i].stepped; }
  std::size_t entries() const { return entries_; }
  void prefetch_index(std::size_t i) const {
    if (i < index_.size()) __builtin_prefetch(&index_[i]);
  }

 private:
  // The entries from per-attribute class bit sets (K <= 256, classes sorted in each range;
  // false: not built, nothing written), then the index's first pointers (finish).
  bool build_from_bits(const SoftmaxModelShape& shape, const ItemArrays& items,
                       const std::vector<LocalInstance>& instances,
                       std::vector<std::size_t>& offsets, int threads);
  template <int W>
  bool build_words(const SoftmaxModelShape& shape, const ItemArrays& items,
                   const std::vector<LocalInstance>& instances,
                   std::vector<std::size_t>& offsets, int threads);
  void finish(const std::vector<std::size_t>& offsets);

  static constexpr uint32_t kNone = ~uint32_t{0};
  struct Index {
    const ListedEntry* first;  // first entry of the instance
    uint32_t count;            // its entries, kNone: not cached
    uint32_t stepped;          // the first ones, that take the gradient (not tied copies)
  };
  std::vector<std::vector<ListedEntry>> blocks_;  // [64][entries of the block's instances]
  std::vector<Index, HugePageAllocator<Index>> index_;  // [N] (read at random: huge pages)
  std::size_t entries_ = 0;
};

// Scores of a cached instance over its listed classes, as softmax_listed_scores computes them
// (dense row or 0, the entries' weights in order, then scale and, with_base, base), bit for bit.
void cached_listed_scores(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const ListedEntry* entries, std::size_t n_entries, const double* w,
                          double scale, double* scores, bool with_base = true);
// add_listed_gradient of a cached instance, bit for bit (its first `stepped` entries).
void add_cached_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                         const ListedEntry* entries, std::size_t n_entries,
                         const double* class_gradient, double* out);

}  // namespace septa::crf
