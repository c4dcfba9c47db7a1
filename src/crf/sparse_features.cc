#include "crf/sparse_features.h"

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
  s.A = in.u64();
  s.K = in.u64();
  s.offsets = in.vec<uint32_t>();
  s.classes = in.vec<int32_t>();
  if (s.offsets.size() != s.A + 1 || s.offsets.front() != 0 || s.offsets.back() != s.classes.size())
    in.fail("feature index does not match its sizes");
  for (std::size_t a = 0; a < s.A; ++a)
    if (s.offsets[a] > s.offsets[a + 1]) in.fail("feature index is not monotone");
  for (int32_t k : s.classes)
    if (k < 0 || static_cast<std::size_t>(k) >= s.K) in.fail("feature class out of range");
  return s;
}

SparseFeatures SparseFeaturesBuilder::build(int min_freq, bool all_classes,
                                            std::vector<uint32_t>* counts_out) {
  std::sort(keys_.begin(), keys_.end());
  SparseFeatures s;
  s.A = A_;
  s.K = K_;
  s.offsets.assign(A_ + 1, 0);
  std::vector<uint32_t> counts(A_, 0);  // [A] features per attribute
  // Pass 1: decide which features exist, appending classes in attribute order.
  std::size_t i = 0;
  std::vector<uint32_t> attribute_total(all_classes ? A_ : 0, 0);  // [A] occurrences
  std::vector<uint32_t> pair_counts;                                // [F] when asked for
  std::vector<std::pair<uint64_t, uint32_t>> seen;                  // (key, count), all_classes
  while (i < keys_.size()) {
    std::size_t j = i;
    while (j < keys_.size() && keys_[j] == keys_[i]) ++j;
    const auto attribute = static_cast<std::size_t>(keys_[i] / K_);
    const auto cls = static_cast<int32_t>(keys_[i] % K_);
    if (all_classes) {
      attribute_total[attribute] += static_cast<uint32_t>(j - i);
      if (counts_out) seen.emplace_back(keys_[i], static_cast<uint32_t>(j - i));
    } else if (static_cast<int>(j - i) >= min_freq) {
      s.classes.push_back(cls);
      if (counts_out) pair_counts.push_back(static_cast<uint32_t>(j - i));
      ++counts[attribute];
    }
    i = j;
  }
  if (all_classes) {
    for (std::size_t a = 0; a < A_; ++a) {
      if (attribute_total[a] == 0 || static_cast<int>(attribute_total[a]) < min_freq) continue;
      for (std::size_t k = 0; k < K_; ++k) s.classes.push_back(static_cast<int32_t>(k));
      counts[a] = static_cast<uint32_t>(K_);
    }
    if (counts_out) {
      pair_counts.assign(s.classes.size(), 0);
      std::size_t f = 0, next = 0;
      for (std::size_t a = 0; a < A_; ++a) {
        if (counts[a] == 0) continue;
        for (std::size_t k = 0; k < K_; ++k, ++f) {
          while (next < seen.size() && seen[next].first < a * K_ + k) ++next;
          if (next < seen.size() && seen[next].first == a * K_ + k) pair_counts[f] = seen[next].second;
        }
      }
    }
  }
  if (counts_out) *counts_out = std::move(pair_counts);
  for (std::size_t a = 0; a < A_; ++a) s.offsets[a + 1] = s.offsets[a] + counts[a];
  keys_.clear();
  keys_.shrink_to_fit();
  return s;
}

}  // namespace septa::crf
