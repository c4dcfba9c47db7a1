#include "crf/features/sparse_features.h"

#include <algorithm>

namespace septa::crf {

int64_t SparseFeatures::find(int32_t attribute, int32_t cls) const {
  for (uint32_t f = offsets[attribute]; f < offsets[attribute + 1]; ++f)
    if (classes[f] == cls) return f;
  return -1;
}

void SparseFeatures::write(ByteWriter& out) const {
  out.u64(A);
  out.u64(K);
  out.vec(offsets);
  out.vec(classes);
}

SparseFeatures SparseFeatures::read(ByteReader& in) {
  SparseFeatures s;
  s.A = in.dimension();
  s.K = in.dimension();
  s.offsets = in.vec<uint32_t>();
  s.classes = in.vec<int32_t>();
  if (s.offsets.empty() || s.offsets.size() - 1 != s.A || s.offsets.front() != 0 || s.offsets.back() != s.classes.size())
    in.fail("feature index does not match its sizes");
  for (std::size_t a = 0; a < s.A; ++a)
    if (s.offsets[a] > s.offsets[a + 1]) in.fail("feature index is not monotone");
  for (int32_t k : s.classes)
    if (k < 0 || static_cast<std::size_t>(k) >= s.K) in.fail("feature class out of range");
  for (std::size_t a = 0; a < s.A; ++a)  // find_sorted relies on it
    for (uint32_t f = s.offsets[a] + 1; f < s.offsets[a + 1]; ++f)
      if (s.classes[f - 1] >= s.classes[f]) in.fail("feature classes of an attribute are not sorted");
  return s;
}

/*
 * Counting sort by attribute (two linear passes), then the classes of each attribute in order
 * (features_from_buckets); runs of equal classes are the occurrence counts. Features come out
 * in attribute order, and in class order within an attribute.
 */
SparseFeatures SparseFeaturesBuilder::build(int min_freq, bool all_classes,
                                            std::vector<uint32_t>* counts_out) {
  std::vector<std::size_t> start(A_ + 1, 0);  // [A+1] bucket boundaries
  for (int32_t a : attributes_) ++start[a + 1];
  for (std::size_t a = 0; a < A_; ++a) start[a + 1] += start[a];
  std::vector<int32_t> bucketed(classes_.size());  // classes grouped by attribute
  {
    std::vector<std::size_t> next(start.begin(), start.end() - 1);
    for (std::size_t i = 0; i < attributes_.size(); ++i) bucketed[next[attributes_[i]]++] = classes_[i];
  }
  attributes_.clear();
  attributes_.shrink_to_fit();
  classes_.clear();
  classes_.shrink_to_fit();
  return features_from_buckets(A_, K_, start, bucketed, min_freq, all_classes, counts_out);
}

/*
 * Each attribute's bucket of class occurrences becomes its features, classes ascending, each
 * with its count (the run length after sorting). A long bucket is counted in a dense [K]
 * scratch instead of sorted: O(bucket + distinct log distinct) instead of O(bucket log bucket);
 * the features are the same.
 */
SparseFeatures features_from_buckets(std::size_t A, std::size_t K,
                                     const std::vector<std::size_t>& start,
                                     std::vector<int32_t>& bucketed, int min_freq,
                                     bool all_classes, std::vector<uint32_t>* counts_out) {
  SparseFeatures s;
  s.A = A;
  s.K = K;
  s.offsets.assign(A + 1, 0);
  std::vector<uint32_t> pair_counts;  // [F] when asked for
  std::vector<uint32_t> class_count(K, 0);  // [K] zero between attributes
  std::vector<int32_t> distinct;            // classes of a counted bucket
  constexpr std::size_t kCountAbove = 32;   // shorter buckets are sorted
  const auto keep = [&](int32_t k, uint32_t count) {
    if (static_cast<int64_t>(count) < min_freq) return;
    s.classes.push_back(k);
    if (counts_out) pair_counts.push_back(count);
  };
  for (std::size_t a = 0; a < A; ++a) {
    const auto first = bucketed.begin() + static_cast<std::ptrdiff_t>(start[a]);
    const auto last = bucketed.begin() + static_cast<std::ptrdiff_t>(start[a + 1]);
    if (all_classes) {
      if (first != last && static_cast<int>(last - first) >= min_freq) {
        for (auto it = first; it != last; ++it) ++class_count[*it];
        for (std::size_t k = 0; k < K; ++k) {
          s.classes.push_back(static_cast<int32_t>(k));
          if (counts_out) pair_counts.push_back(class_count[k]);
          class_count[k] = 0;
        }
      }
    } else if (static_cast<std::size_t>(last - first) > kCountAbove) {
      distinct.clear();
      for (auto it = first; it != last; ++it)
        if (class_count[*it]++ == 0) distinct.push_back(*it);
      std::sort(distinct.begin(), distinct.end());
      for (int32_t k : distinct) {
        keep(k, class_count[k]);
        class_count[k] = 0;
      }
    } else {
      std::sort(first, last);
      for (auto it = first; it != last;) {
        auto run = it;
        while (run != last && *run == *it) ++run;
        keep(*it, static_cast<uint32_t>(run - it));
        it = run;
      }
    }
    s.offsets[a + 1] = static_cast<uint32_t>(s.classes.size());
  }
  if (counts_out) *counts_out = std::move(pair_counts);
  return s;
}

}  // namespace septa::crf
