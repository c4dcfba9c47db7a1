#include "crf/optim/listed_cache.h"

#include "crf/optim/only_gold.h"
#include "crf/parallel/ordered_parallel.h"

namespace septa::crf {

ListedFeatureCache::ListedFeatureCache(const Dataset& data,
                                       const std::vector<LocalInstance>& instances,
                                       const SoftmaxModelShape& shape, int threads) {
  if (!shape.candidates || shape.mask || !data.unit_values ||
      shape.features->size() >= ListedEntry::kFeatures)
    return;
  const std::size_t N = instances.size();
  constexpr std::size_t B = 64;
  blocks_.resize(B);
  index_.assign(N, Index{nullptr, kNone});
  const ItemArrays items = ItemArrays::of(data);
  const int32_t* classes = shape.features->classes.data();
  const CandidateLists& lists = *shape.candidates;
  std::vector<std::size_t> offsets(N, 0);  // [N] first entry within the block
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
      index_[i].count = static_cast<uint32_t>(visits.size());
      for (const FeatureVisit& v : visits) {
        uint32_t slot = 0;
        while (lists.classes[at + slot] != classes[v.f]) ++slot;
        block.push_back(ListedEntry{v.f << 6 | slot});
      }
    }
    block.shrink_to_fit();
  });
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
