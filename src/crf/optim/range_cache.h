// The feature ranges of each unlisted instance, found once per fit instead of once per SGD step
// (the unary factor, piecewise's node pieces).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "crf/features/masked_rows.h"
#include "crf/objectives/softmax_objective.h"
#include "crf/optim/huge_pages.h"

namespace septa::crf {

// The features [first, last) of one attribute of an instance.
struct CachedRange {
  uint32_t first, last;
};

/*
 * For every instance without a candidate list, its non-empty feature ranges in the order
 * softmax_ranged_scores finds them: a step reads one contiguous run of ranges instead of the
 * chain item offsets -> attribute ids -> feature offsets (each a cache miss after the last),
 * and the SGD can prefetch the next instance's weights a whole step ahead. Built only for
 * unit-valued data (Dataset::unit_values: w * 1 = w, so the sums are the same bit for bit)
 * without candidate lists; empty otherwise. With a mask (the MEMM's allowed successors) the
 * scores of instance i (cached_ranged_scores below) set the disallowed classes to -inf, as
 * softmax_ranged_scores does. 8 bytes per range (CoNLL-2000's unary factor: about 4 million
 * ranges, 32 MB).
 */
class RangeCache {
 public:
  RangeCache() = default;
  // Instances [N]; built in 64 fixed blocks on `threads` threads. With `built` set, the ranges
  // are written in instance order on the calling thread instead, into storage whose pages are
  // touched only as it fills, and built(i) is called now and then once instances [0, i) are
  // written (and at the end with N): the caller may then free their items, so that the items
  // and the cache need not be resident together (the sharded SGD over ranks). The ranges are
  // the same either way.
  // With `masks` (and K <= 32, the classes of every attribute's features increasing, and a
  // processor with AVX-512), the ranges are kept as MaskedRange: the steps then add a range's
  // weights to the class scores as a vector, without reading the features' classes; for
  // 32 < K <= 64 (CoNLL-2000 POS: 44 labels) as WideMaskedRange, likewise.
  RangeCache(const Dataset& data, const std::vector<LocalInstance>& instances,
             const SoftmaxModelShape& shape, int threads,
             const std::function<void(std::size_t)>& built = nullptr, bool masks = true);

  bool empty() const { return offsets_.empty(); }
  std::size_t size() const { return offsets_.empty() ? 0 : offsets_.size() - 1; }  // instances
  // Kept as MaskedRange (masked_begin / masked_end), as WideMaskedRange (wide(): wide_begin /
  // wide_end), else as CachedRange (begin / end).
  bool masked() const { return masked_; }
  bool wide() const { return wide_; }
  const CachedRange* begin(std::size_t i) const { return ranges_.data() + offsets_[i]; }
  const CachedRange* end(std::size_t i) const { return ranges_.data() + offsets_[i + 1]; }
  const MaskedRange* masked_begin(std::size_t i) const { return masked_ranges_.data() + offsets_[i]; }
  const MaskedRange* masked_end(std::size_t i) const { return masked_ranges_.data() + offsets_[i + 1]; }
  const WideMaskedRange* wide_begin(std::size_t i) const { return wide_ranges_.data() + offsets_[i]; }
  const WideMaskedRange* wide_end(std::size_t i) const { return wide_ranges_.data() + offsets_[i + 1]; }
  // The ranges of instance i start at this byte (any kind).
  const void* data_of(std::size_t i) const {
    if (wide_) return wide_begin(i);
    return masked_ ? static_cast<const void*>(masked_begin(i)) : static_cast<const void*>(begin(i));
  }
  std::size_t bytes_of(std::size_t i) const {
    return (offsets_[i + 1] - offsets_[i]) *
           (wide_ ? sizeof(WideMaskedRange) : masked_ ? sizeof(MaskedRange) : sizeof(CachedRange));
  }
  const std::size_t* offset_of(std::size_t i) const { return &offsets_[i]; }
  std::size_t ranges() const { return offsets_.empty() ? 0 : offsets_.back(); }
  // f(first, last) for every range of instance i, in order.
  template <class F>
  void each(std::size_t i, F&& f) const {
    if (masked_) {
      for (const MaskedRange* r = masked_begin(i), *e = masked_end(i); r != e; ++r) f(r->first, r->last());
    } else if (wide_) {
      for (const WideMaskedRange* r = wide_begin(i), *e = wide_end(i); r != e; ++r)
        f(r->first, r->first + static_cast<uint32_t>(bit_count(r->mask())));
    } else {
      for (const CachedRange* r = begin(i), *e = end(i); r != e; ++r) f(r->first, r->last);
    }
  }

 private:
  // (read at random by the steps: on huge pages)
  std::vector<std::size_t, HugePageAllocator<std::size_t>> offsets_;  // [N+1] first range of i
  // (sized unzeroed: the build's parallel pass writes every range)
  std::vector<CachedRange, UnzeroedHugePageAllocator<CachedRange>> ranges_;  // [ranges] or empty
  std::vector<MaskedRange, UnzeroedHugePageAllocator<MaskedRange>> masked_ranges_;  // [ranges]/{}
  std::vector<WideMaskedRange, UnzeroedHugePageAllocator<WideMaskedRange>> wide_ranges_;  // or {}
  bool masked_ = false, wide_ = false;
};

// Scores [K] of an instance from its cached ranges, as softmax_ranged_scores computes them (the
// dense row or 0, the ranges' weights in order, then scale), bit for bit.
void cached_ranged_scores(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const CachedRange* first, const CachedRange* last, const double* w,
                          double scale, double* scores);
// add_ranged_gradient of that instance from its cached ranges, bit for bit.
void add_cached_ranged_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                                const CachedRange* first, const CachedRange* last,
                                const double* class_gradient, double* out);

// The two above for instance i of `cache`, either kind of range: the same sums, bit for bit
// (the scores then masked as softmax_ranged_scores masks them).
void cached_ranged_scores(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const RangeCache& cache, std::size_t i, const double* w, double scale,
                          double* scores);
// The gradient also marks the weights it changed (the ranges and the dense row) in `touched`
// [dimension / 64 + 1] when given (masked: in the same pass, with the processor's popcount).
void add_cached_ranged_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                                const RangeCache& cache, std::size_t i,
                                const double* class_gradient, double* out,
                                uint64_t* touched = nullptr);

// The softmax of instance i's scores (cached_ranged_scores, then softmax_normalize) to out [K]
// in one pass where fused_ranged_step would run; the same values bit for bit. Returns false,
// writing nothing, elsewhere.
bool cached_ranged_probabilities(const SoftmaxModelShape& shape, const LocalInstance& instance,
                                 const RangeCache& cache, std::size_t i, const double* w,
                                 double scale, double* out);
// cached_ranged_probabilities over masked ranges the caller found (those a RangeCache of the
// instance would hold, e.g. one item's, found on the fly where no cache holds it): the same
// values bit for bit. Returns false, writing nothing, where cached_ranged_probabilities would.
bool ranged_probabilities(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const MaskedRange* first, const MaskedRange* last, const double* w,
                          double scale, double* out);
bool ranged_probabilities(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const WideMaskedRange* first, const WideMaskedRange* last,
                          const double* w, double scale, double* out);
// One SGD step of instance i of `cache` in one pass where the processor and the cache allow it
// (masked ranges of either width, K <= 64, no shape mask, AVX-512 with the x86-64-v3 level): the scores of w
// times `scale`, their softmax, the gradient (P - onehot(gold)) times `rate` added to w (and
// marked in `touched` when given); loss = log-sum-exp - the gold score. The same values, bit
// for bit, as cached_ranged_scores, softmax_normalize and add_cached_ranged_gradient in turn.
// Returns false, changing nothing, where it does not apply.
bool fused_ranged_step(const SoftmaxModelShape& shape, const LocalInstance& instance,
                       const RangeCache& cache, std::size_t i, double* w, double scale,
                       double rate, uint64_t* touched, double& loss);

}  // namespace septa::crf
