#include "crf/objectives/softmax_objective.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "crf/lattice/fast_exp.h"
#include "crf/parallel/ordered_parallel.h"

namespace septa::crf {

namespace {

/*
 * The features of the instance's attributes for the listed classes cls [n] (each listed once),
 * as visits (feature, attribute value) in the order every pass applies them. A short feature
 * range (at most 16 n features) is scanned: its classes are read and the features of listed
 * classes (a mark per class) are kept, so the weights and gradients of the other classes are
 * never touched; a long one is searched class by class (SparseFeatures::find_sorted). The cost
 * per attribute is min(range, n log range), not the range (up to all the label pairs an
 * attribute was seen with). Each class meets its features in attribute order, as the dense
 * pass does, so the sums are the same bit for bit.
 * Memory-latency bound (random attributes, random features): two passes so that the cache
 * misses of one pass overlap instead of queueing: (1) every attribute's feature range, its
 * classes prefetched; (2) the features of listed classes in each range, their weights w
 * prefetched. (No lambdas around the prefetches: gcc 12 drops them.)
 */
void listed_visits(const SparseFeatures& features, const SoftmaxModelShape& shape,
                   const ItemArrays& items, const LocalInstance& instance, const int32_t* cls,
                   std::size_t n, const double* w, std::vector<FeatureVisit>& visits) {
  // w (null: nothing prefetched) is only prefetched.
  struct Range {
    uint32_t first, last;
    int32_t attribute;
    float value;
  };
  thread_local std::vector<char> listed;  // [K] 1 for the listed classes, else 0 (restored)
  thread_local std::vector<Range> ranges;
  if (listed.size() < shape.K) listed.resize(shape.K, 0);
  for (std::size_t i = 0; i < n; ++i) listed[cls[i]] = 1;
  ranges.clear();
  visits.clear();
  const int32_t* classes = features.classes.data();
  const uint32_t* offsets = features.offsets.data();
  for (int32_t k = 0; k < instance.span; ++k) {
    const std::size_t item = instance.item + k;
    const int32_t shift = static_cast<int32_t>(k * shape.A);
    for (std::size_t e = items.item_offsets[item]; e < items.item_offsets[item + 1]; ++e) {
      const int32_t a = items.ids[e] + shift;
      const uint32_t first = offsets[a], last = offsets[a + 1];
      if (first == last) continue;
      __builtin_prefetch(classes + first);
      ranges.push_back(Range{first, last, a, items.value(e)});
    }
  }
  const uint32_t longest_scan = static_cast<uint32_t>(16 * n);
  const char* is_listed = listed.data();
  for (const Range& r : ranges) {
    if (r.last - r.first <= longest_scan && !w) {
      // Without weights to prefetch, each feature is written and kept when listed: no
      // mispredicted branch per listed feature (the listed feature cache's build).
      std::size_t at = visits.size();
      visits.resize(at + (r.last - r.first));
      FeatureVisit* out = visits.data();
      for (uint32_t f = r.first; f < r.last; ++f) {
        out[at] = FeatureVisit{f, r.value};
        at += is_listed[classes[f]];
      }
      visits.resize(at);
    } else if (r.last - r.first <= longest_scan) {
      for (uint32_t f = r.first; f < r.last; ++f)
        if (is_listed[classes[f]]) {
          if (w) __builtin_prefetch(w + f);
          visits.push_back(FeatureVisit{f, r.value});
        }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        const int64_t f = features.find_sorted(r.attribute, cls[i]);
        if (f < 0) continue;
        if (w) __builtin_prefetch(w + f);
        visits.push_back(FeatureVisit{static_cast<uint32_t>(f), r.value});
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) listed[cls[i]] = 0;
}

// scores[cls[i]] from the visits: dense row (or 0), the visited weights in order, then scale
// and base, as softmax_scores_over defines them.
void scores_from_visits(const SoftmaxModelShape& shape, const LocalInstance& instance,
                        const double* w, double scale, const int32_t* cls, std::size_t n,
                        const double* base, const std::vector<FeatureVisit>& visits,
                        double* scores) {
  const SparseFeatures& features = *shape.features;
  const double* dense =
      shape.R > 0 ? w + features.size() + static_cast<std::size_t>(instance.context) * shape.K
                  : nullptr;
  for (std::size_t i = 0; i < n; ++i) scores[cls[i]] = dense ? dense[cls[i]] : 0.0;
  const int32_t* classes = features.classes.data();
  for (const FeatureVisit& v : visits) scores[classes[v.f]] += w[v.f] * v.value;
  for (std::size_t i = 0; i < n; ++i) {
    if (scale != 1.0) scores[cls[i]] *= scale;
    if (base) scores[cls[i]] += base[i];
  }
}

// The candidate list of an instance that has one (see CandidateLists).
struct Listed {
  const int32_t* cls;
  std::size_t n;
  const double* base;  // [n] or null
};
Listed listed_of(const SoftmaxModelShape& shape, const LocalInstance& instance) {
  const CandidateLists& lists = *shape.candidates;
  const std::size_t c = static_cast<std::size_t>(instance.candidates), at = lists.offsets[c];
  return Listed{&lists.classes[at], lists.offsets[c + 1] - at,
                lists.base.empty() ? nullptr : &lists.base[at]};
}

}  // namespace

void softmax_scores_over(const SoftmaxModelShape& shape, const ItemArrays& items,
                         const LocalInstance& instance, const double* w, double scale,
                         const int32_t* cls, std::size_t n, const double* base, double* scores) {
  thread_local std::vector<FeatureVisit> visits;
  listed_visits(*shape.features, shape, items, instance, cls, n, w, visits);
  scores_from_visits(shape, instance, w, scale, cls, n, base, visits, scores);
}

void softmax_listed_scores(const SoftmaxModelShape& shape, const ItemArrays& items,
                           const LocalInstance& instance, const double* w, double scale,
                           double* scores, std::vector<FeatureVisit>& visits) {
  const Listed l = listed_of(shape, instance);
  listed_visits(*shape.features, shape, items, instance, l.cls, l.n, w, visits);
  scores_from_visits(shape, instance, w, scale, l.cls, l.n, l.base, visits, scores);
}

void listed_feature_visits(const SoftmaxModelShape& shape, const ItemArrays& items,
                           const LocalInstance& instance, std::vector<FeatureVisit>& visits) {
  const Listed l = listed_of(shape, instance);
  listed_visits(*shape.features, shape, items, instance, l.cls, l.n, nullptr, visits);
}

void add_listed_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                         const std::vector<FeatureVisit>& visits, const double* class_gradient,
                         double* out) {
  const Listed l = listed_of(shape, instance);
  const SparseFeatures& features = *shape.features;
  const int32_t* classes = features.classes.data();
  for (const FeatureVisit& v : visits) out[v.f] += v.value * class_gradient[classes[v.f]];
  if (shape.R > 0) {
    double* dense = out + features.size() + instance.context * shape.K;
    for (std::size_t i = 0; i < l.n; ++i) dense[l.cls[i]] += class_gradient[l.cls[i]];
  }
}

namespace {

// softmax_raw_scores of an instance without a candidate list; its non-empty feature ranges, in
// the order they were added, are left in `ranges` (add_ranged_gradient reuses them).
void dense_scores(const SoftmaxModelShape& shape, const ItemArrays& items,
                  const LocalInstance& instance, const double* w, double scale, double* scores,
                  bool with_base, std::vector<FeatureRange>& ranges) {
  const std::size_t K = shape.K;
  const SparseFeatures& features = *shape.features;
  if (shape.R > 0) {
    const double* dense = w + features.size() + instance.context * K;
    std::copy(dense, dense + K, scores);
  } else {
    std::fill(scores, scores + K, 0.0);
  }
  // Memory-latency bound (random attributes): first look up every attribute's feature range and
  // prefetch its classes and weights, then accumulate.
  const uint32_t* offsets = features.offsets.data();
  const int32_t* classes = features.classes.data();
  ranges.clear();
  for (int32_t k = 0; k < instance.span; ++k) {
    const std::size_t item = instance.item + k;
    const int32_t shift = static_cast<int32_t>(k * shape.A);
    for (std::size_t e = items.item_offsets[item]; e < items.item_offsets[item + 1]; ++e) {
      const int32_t a = items.ids[e] + shift;
      const uint32_t first = offsets[a], last = offsets[a + 1];
      if (first == last) continue;
      __builtin_prefetch(w + first);
      __builtin_prefetch(classes + first);
      ranges.push_back(FeatureRange{first, last, items.value(e)});
    }
  }
  for (const FeatureRange& r : ranges) {
    const double v = r.value;
    for (uint32_t f = r.first; f < r.last; ++f) scores[classes[f]] += w[f] * v;
  }
  if (scale != 1.0)
    for (std::size_t c = 0; c < K; ++c) scores[c] *= scale;
  if (with_base && shape.candidates && instance.candidates >= 0 && !shape.candidates->base.empty()) {
    const CandidateLists& lists = *shape.candidates;
    const std::size_t c = static_cast<std::size_t>(instance.candidates);
    for (std::size_t i = lists.offsets[c]; i < lists.offsets[c + 1]; ++i)
      scores[lists.classes[i]] += lists.base[i];
  }
  if (shape.mask) {
    const char* allowed = &(*shape.mask)[instance.context * K];
    for (std::size_t c = 0; c < K; ++c)
      if (!allowed[c]) scores[c] = -std::numeric_limits<double>::infinity();
  }
}

}  // namespace

void softmax_raw_scores(const SoftmaxModelShape& shape, const ItemArrays& items,
                        const LocalInstance& instance, const double* w, double scale,
                        double* scores, bool with_base) {
  if (shape.candidates && instance.candidates >= 0 && !shape.mask) {
    const CandidateLists& lists = *shape.candidates;
    const std::size_t c = static_cast<std::size_t>(instance.candidates), at = lists.offsets[c];
    softmax_scores_over(shape, items, instance, w, scale, &lists.classes[at],
                        lists.offsets[c + 1] - at,
                        with_base && !lists.base.empty() ? &lists.base[at] : nullptr, scores);
    return;
  }
  thread_local std::vector<FeatureRange> ranges;
  dense_scores(shape, items, instance, w, scale, scores, with_base, ranges);
}

void softmax_ranged_scores(const SoftmaxModelShape& shape, const ItemArrays& items,
                           const LocalInstance& instance, const double* w, double scale,
                           double* scores, std::vector<FeatureRange>& ranges) {
  dense_scores(shape, items, instance, w, scale, scores, /*with_base=*/true, ranges);
}

void add_ranged_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                         const std::vector<FeatureRange>& ranges, const double* class_gradient,
                         double* out) {
  const SparseFeatures& features = *shape.features;
  const int32_t* classes = features.classes.data();
  for (const FeatureRange& r : ranges) {
    const double v = r.value;
    for (uint32_t f = r.first; f < r.last; ++f) out[f] += v * class_gradient[classes[f]];
  }
  if (shape.R > 0) {
    double* dense = out + features.size() + instance.context * shape.K;
    for (std::size_t c = 0; c < shape.K; ++c) dense[c] += class_gradient[c];
  }
}

// (scores - m <= 0, so fast_exp's upper clamp never acts; the clamp and the exponentials in two
// passes, each vectorised: one exponential per loop iteration was 6% of a one-thread
// -a separate run)
SEPTA_VECTOR_CLONES double softmax_normalize(double* scores, std::size_t K) {
  const double m = *std::max_element(scores, scores + K);
  for (std::size_t c = 0; c < K; ++c) scores[c] = std::max(scores[c] - m, -708.0);
  for (std::size_t c = 0; c < K; ++c) scores[c] = fast_exp_of_clamped(scores[c]);
  double sum = 0.0;
  for (std::size_t c = 0; c < K; ++c) sum += scores[c];
  const double inv = 1.0 / sum;
  for (std::size_t c = 0; c < K; ++c) scores[c] *= inv;
  return m + std::log(sum);
}

double softmax_normalize_over(double* scores, std::size_t K, const int32_t* cls, std::size_t n) {
  thread_local std::vector<double> kept;  // [n] scratch
  kept.resize(n);
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, scores[cls[i]]);
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += kept[i] = fast_exp(scores[cls[i]] - m);
  std::fill(scores, scores + K, 0.0);
  const double inv = 1.0 / sum;
  for (std::size_t i = 0; i < n; ++i) scores[cls[i]] = kept[i] * inv;
  return m + std::log(sum);
}

// The listed scores gathered into a contiguous row, so that the clamp and the exponentials run
// as vectorised passes (x - m <= 0: fast_exp_of_clamped(max(x - m, -708)) is fast_exp(x - m)
// bit for bit); the sum stays in list order. The clone is AVX2 without FMA: contracted
// multiply-adds would round differently from the scalar code that -a separate's and
// -a separate-counts' tags were computed with.
SEPTA_AVX2_CLONES double softmax_normalize_listed(double* scores, const int32_t* cls,
                                                    std::size_t n) {
  thread_local std::vector<double> row;  // [n] scratch
  if (row.size() < n) row.resize(n);
  double* x = row.data();
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = scores[cls[i]];
    m = std::max(m, x[i]);
  }
  for (std::size_t i = 0; i < n; ++i) x[i] = std::max(x[i] - m, -708.0);
  for (std::size_t i = 0; i < n; ++i) x[i] = fast_exp_of_clamped(x[i]);
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += x[i];
  const double inv = 1.0 / sum;
  for (std::size_t i = 0; i < n; ++i) scores[cls[i]] = x[i] * inv;
  return m + std::log(sum);
}

double softmax_normalize_instance(const SoftmaxModelShape& shape, const LocalInstance& instance,
                                  double* scores) {
  if (!shape.candidates || instance.candidates < 0) return softmax_normalize(scores, shape.K);
  const CandidateLists& lists = *shape.candidates;
  const std::size_t c = static_cast<std::size_t>(instance.candidates);
  return softmax_normalize_over(scores, shape.K, &lists.classes[lists.offsets[c]],
                                lists.offsets[c + 1] - lists.offsets[c]);
}

void add_instance_gradient(const SoftmaxModelShape& shape, const ItemArrays& items,
                           const LocalInstance& instance, const double* class_gradient,
                           double* out) {
  const SparseFeatures& features = *shape.features;
  if (shape.candidates && instance.candidates >= 0) {  // the listed classes only (see above)
    // Unlisted classes have a zero gradient (their probability is 0 and they are not gold).
    thread_local std::vector<FeatureVisit> visits;
    const Listed l = listed_of(shape, instance);
    listed_visits(features, shape, items, instance, l.cls, l.n, out, visits);
    add_listed_gradient(shape, instance, visits, class_gradient, out);
    return;
  }
  for (int32_t k = 0; k < instance.span; ++k) {
    const std::size_t item = instance.item + k;
    const int32_t shift = static_cast<int32_t>(k * shape.A);
    for (std::size_t e = items.item_offsets[item]; e < items.item_offsets[item + 1]; ++e)
      features.add_expectations(items.ids[e] + shift, items.value(e), class_gradient, out);
  }
  if (shape.R > 0) {
    double* dense = out + features.size() + instance.context * shape.K;
    for (std::size_t c = 0; c < shape.K; ++c) dense[c] += class_gradient[c];
  }
}

double softmax_probabilities(const SoftmaxModelShape& shape, const ItemArrays& items,
                             const LocalInstance& instance, const double* w, double* probs) {
  softmax_raw_scores(shape, items, instance, w, 1.0, probs);
  return softmax_normalize_instance(shape, instance, probs);
}

SoftmaxObjective::SoftmaxObjective(const Dataset& data, const std::vector<LocalInstance>& instances,
                                   SoftmaxModelShape shape, int threads)
    : data_(data), instances_(instances), shape_(shape), threads_(std::max(1, threads)) {
  for (std::size_t b = 0; b <= kBlocks; ++b) block_bounds_.push_back(instances.size() * b / kBlocks);
  partial_.assign(std::min<std::size_t>(threads_, kBlocks), std::vector<double>(dimension(), 0.0));
  block_loss_.assign(kBlocks, 0.0);
}

/*
 * Loss and gradient of multinomial logistic regression:
 *   loss = sum_i w_i (log Z_i - s_i[gold_i]),  Z_i = sum_k exp(s_i[k])
 *   d loss / d theta_(a,k) = sum_i w_i v_(i,a) (P_i(k) - [k = gold_i])
 */
double SoftmaxObjective::evaluate(const double* w, double* grad) {
  const std::size_t D = dimension(), K = shape_.K;
  std::fill(grad, grad + D, 0.0);
  double loss = 0.0;
  auto work = [&](std::size_t block, std::size_t worker) {
    std::vector<double>& g = partial_[worker];
    std::vector<double> scores(K);
    double block_loss = 0.0;
    for (std::size_t i = block_bounds_[block]; i < block_bounds_[block + 1]; ++i) {
      const LocalInstance& instance = instances_[i];
      softmax_raw_scores(shape_, ItemArrays::of(data_), instance, w, 1.0, scores.data());
      const double gold_score = scores[instance.gold];
      block_loss +=
          instance.weight * (softmax_normalize_instance(shape_, instance, scores.data()) - gold_score);
      for (std::size_t c = 0; c < K; ++c) scores[c] *= instance.weight;
      scores[instance.gold] -= instance.weight;  // now w_i (P_i - onehot)
      add_instance_gradient(shape_, ItemArrays::of(data_), instance, scores.data(), g.data());
    }
    block_loss_[block] = block_loss;
  };
  auto commit = [&](std::size_t block, std::size_t worker) {
    std::vector<double>& g = partial_[worker];
    for (std::size_t d = 0; d < D; ++d) {
      grad[d] += g[d];
      g[d] = 0.0;
    }
    loss += block_loss_[block];
  };
  for_blocks_ordered(kBlocks, threads_, work, commit);
  return loss;
}

}  // namespace septa::crf
