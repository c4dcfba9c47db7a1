// (attribute, class) features stored by attribute: the map from attributes to the weights
// they fire, shared by the CRF state features and every local classifier.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "crf/io/binary_io.h"

namespace septa::crf {

// How many attribute entries ahead loops over random attributes prefetch (see prefetch_range).
// 16 (was 8): lbfgs on CoNLL-2000, one thread, 10 iterations took 2.60 user s against 2.80
// (medians of 5, 5 of 5 pairs faster; 0.171 against 0.191 s per iteration past the set-up);
// 32 gave 2.67; prefetching every line of a range instead was slower.
constexpr std::size_t kPrefetchAhead = 16;

// out[i] = first + i for i < 8 * blocks: a row of consecutive feature ids written in whole
// blocks of 8, past the row's end (out has room). Loops that list rows of random lengths this
// way take no branch per row (one mispredicted loop exit per row cost more than the stores).
inline void write_consecutive(uint32_t* out, uint32_t first, std::size_t blocks) {
  typedef uint32_t Ids8 __attribute__((vector_size(32)));
  const Ids8 row = Ids8{0, 1, 2, 3, 4, 5, 6, 7} + first;
  for (std::size_t q = 0; q < blocks; ++q) {
    const Ids8 ids = row + static_cast<uint32_t>(8 * q);
    std::memcpy(out + 8 * q, &ids, sizeof ids);
  }
}

struct SparseFeatures {
  std::size_t A = 0;                // attributes
  std::size_t K = 0;                // classes (labels, label pairs, ...)
  std::vector<uint32_t> offsets;    // [A+1] features of attribute a: [offsets[a], offsets[a+1])
  std::vector<int32_t> classes;     // [F] class of each feature; a feature's id is its index

  std::size_t size() const { return classes.size(); }

  // scores[k] += w[f] * value for every feature f = (attribute, k).
  void add_scores(int32_t attribute, double value, const double* w, double* scores) const {
    for (uint32_t f = offsets[attribute]; f < offsets[attribute + 1]; ++f)
      scores[classes[f]] += w[f] * value;
  }
  // scores[k] += w[f] for every feature f = (attribute, k) (add_scores with value 1).
  void add_weights(int32_t attribute, const double* w, double* scores) const {
    for (uint32_t f = offsets[attribute]; f < offsets[attribute + 1]; ++f)
      scores[classes[f]] += w[f];
  }
  // grad[f] += value * probs[k] for every feature f = (attribute, k).
  void add_expectations(int32_t attribute, double value, const double* probs,
                        double* grad) const {
    for (uint32_t f = offsets[attribute]; f < offsets[attribute + 1]; ++f)
      grad[f] += value * probs[classes[f]];
  }
  // Prefetches the offsets of an attribute, or the first lines of its classes and of the
  // weights (or gradient) w [F] of its features: for loops that visit random attributes a few
  // entries ahead of their work.
  void prefetch_offsets(int32_t attribute) const { __builtin_prefetch(&offsets[attribute]); }
  void prefetch_range(int32_t attribute, const double* w) const {
    const uint32_t first = offsets[attribute];
    __builtin_prefetch(classes.data() + first);
    __builtin_prefetch(w + first);
  }
  // Feature id of (attribute, class), or -1.
  int64_t find(int32_t attribute, int32_t cls) const;
  // The same, relying on the classes of an attribute being sorted (as build() and read()
  // guarantee): a binary search on long ranges.
  int64_t find_sorted(int32_t attribute, int32_t cls) const {
    uint32_t lo = offsets[attribute], hi = offsets[attribute + 1];
    while (hi - lo > 8) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (classes[mid] <= cls) lo = mid; else hi = mid;
    }
    for (; lo < hi; ++lo)
      if (classes[lo] == cls) return lo;
    return -1;
  }

  void write(ByteWriter& out) const;
  static SparseFeatures read(ByteReader& in);
};

// The features of class occurrences grouped by attribute: bucketed[start[a] .. start[a+1]) are
// the classes seen with attribute a (any order; the buckets are reordered in place). Keeps the
// (attribute, class) pairs seen at least `min_freq` times; with `all_classes`, every class of
// each attribute seen at least `min_freq` times. `counts` [F], when given, receives each
// feature's occurrence count. (SparseFeaturesBuilder::build after grouping its occurrences.)
SparseFeatures features_from_buckets(std::size_t A, std::size_t K,
                                     const std::vector<std::size_t>& start,
                                     std::vector<int32_t>& bucketed, int min_freq,
                                     bool all_classes, std::vector<uint32_t>* counts = nullptr);

// Collects (attribute, class) occurrences, then builds the feature set.
class SparseFeaturesBuilder {
 public:
  SparseFeaturesBuilder(std::size_t A, std::size_t K) : A_(A), K_(K) {}
  void add(int32_t attribute, int32_t cls) {
    attributes_.push_back(attribute);
    classes_.push_back(cls);
  }
  // Keeps pairs seen at least `min_freq` times; with `all_classes`, every class of each
  // attribute seen at least `min_freq` times.
  // `counts` [F], when given, receives each feature's occurrence count.
  SparseFeatures build(int min_freq, bool all_classes, std::vector<uint32_t>* counts = nullptr);

 private:
  std::size_t A_, K_;
  std::vector<int32_t> attributes_;  // [occurrences]
  std::vector<int32_t> classes_;     // [occurrences]
};

}  // namespace septa::crf
