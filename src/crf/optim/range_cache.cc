#include "crf/optim/range_cache.h"

#include <algorithm>

#include "crf/parallel/ordered_parallel.h"

namespace septa::crf {

RangeCache::RangeCache(const Dataset& data, const std::vector<LocalInstance>& instances,
                       const SoftmaxModelShape& shape, int threads,
                       const std::function<void(std::size_t)>& built) {
  if (shape.candidates || shape.mask || !data.unit_values) return;
  const std::size_t N = instances.size();
  constexpr std::size_t B = 64;
  const uint32_t* offsets = shape.features->offsets.data();
  // The non-empty ranges of instance i, in softmax_ranged_scores' order, to `out`.
  const auto each_range = [&](std::size_t i, auto&& out) {
    const LocalInstance& instance = instances[i];
    for (int32_t k = 0; k < instance.span; ++k) {
      const std::size_t item = instance.item + static_cast<std::size_t>(k);
      const int32_t shift = static_cast<int32_t>(static_cast<std::size_t>(k) * shape.A);
      for (std::size_t e = data.item_offsets[item]; e < data.item_offsets[item + 1]; ++e) {
        const int32_t a = data.attribute_ids[e] + shift;
        if (offsets[a] != offsets[a + 1]) out(CachedRange{offsets[a], offsets[a + 1]});
      }
    }
  };
  offsets_.assign(N + 1, 0);
  parallel_for(B, threads, [&](std::size_t b) {
    for (std::size_t i = N * b / B; i < N * (b + 1) / B; ++i) {
      std::size_t n = 0;
      each_range(i, [&](const CachedRange&) { ++n; });
      offsets_[i + 1] = n;
    }
  });
  for (std::size_t i = 0; i < N; ++i) offsets_[i + 1] += offsets_[i];
  if (built) {  // in order, appended: reserve() leaves the pages untouched until written
    constexpr std::size_t kEvery = std::size_t{1} << 12;
    ranges_.reserve(offsets_[N]);
    for (std::size_t i = 0; i < N; ++i) {
      each_range(i, [&](const CachedRange& r) { ranges_.push_back(r); });
      if ((i + 1) % kEvery == 0) built(i + 1);
    }
    built(N);
    return;
  }
  ranges_.resize(offsets_[N]);
  parallel_for(B, threads, [&](std::size_t b) {
    for (std::size_t i = N * b / B; i < N * (b + 1) / B; ++i) {
      CachedRange* at = ranges_.data() + offsets_[i];
      each_range(i, [&](const CachedRange& r) { *at++ = r; });
    }
  });
}

void cached_ranged_scores(const SoftmaxModelShape& shape, const LocalInstance& instance,
                          const CachedRange* first, const CachedRange* last, const double* w,
                          double scale, double* scores) {
  const std::size_t K = shape.K;
  if (shape.R > 0) {
    const double* dense = w + shape.features->size() + static_cast<std::size_t>(instance.context) * K;
    std::copy(dense, dense + K, scores);
  } else {
    std::fill(scores, scores + K, 0.0);
  }
  const int32_t* classes = shape.features->classes.data();
  for (const CachedRange* r = first; r != last; ++r)
    for (uint32_t f = r->first; f < r->last; ++f) scores[classes[f]] += w[f];
  if (scale != 1.0)
    for (std::size_t c = 0; c < K; ++c) scores[c] *= scale;
}

void add_cached_ranged_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                                const CachedRange* first, const CachedRange* last,
                                const double* class_gradient, double* out) {
  const int32_t* classes = shape.features->classes.data();
  for (const CachedRange* r = first; r != last; ++r)
    for (uint32_t f = r->first; f < r->last; ++f) out[f] += class_gradient[classes[f]];
  if (shape.R > 0) {
    double* dense = out + shape.features->size() + static_cast<std::size_t>(instance.context) * shape.K;
    for (std::size_t c = 0; c < shape.K; ++c) dense[c] += class_gradient[c];
  }
}

}  // namespace septa::crf
