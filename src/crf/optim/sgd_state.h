// Private to src/crf/optim: the state of SGD steps on one softmax factor (scaled weights, the
// decay, the caches' fast paths), shared by ShardedSgd and the rate calibration.
#ifndef SEPTA_CRF_OPTIM_SGD_STATE_H
#define SEPTA_CRF_OPTIM_SGD_STATE_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "crf/lattice/fast_exp.h"
#include "crf/optim/listed_cache.h"
#include "crf/optim/only_gold.h"
#include "crf/optim/range_cache.h"
#include "crf/optim/sgd.h"
#include "crf/optim/touched_bits.h"

namespace septa::crf {

/*
 * One SGD step on loss_i(w) + (lambda / 2) ||w||^2:
 *   w <- (1 - eta lambda) w - eta grad loss_i(w)
 * The decay touches every weight; it is kept as a scalar: w = scale * v (Shalev-Shwartz et al.
 * 2007), so each step costs only the features of the instance. `decay` keeps the product of
 * the decay factors (through rescales), `touched` (when given) marks the weights whose
 * gradient was applied.
 */
class SgdState {
 public:
  SgdState(const Dataset& data, const SoftmaxModelShape& shape, double* v, double lambda,
           double scale = 1.0, uint64_t* touched = nullptr,
           const ListedFeatureCache* cache = nullptr, const RangeCache* range_cache = nullptr)
      : items_(ItemArrays::of(data)), shape_(shape), v_(v), scale_(scale), lambda_(lambda),
        touched_(touched), cache_(cache),
        range_cache_(range_cache && !range_cache->empty() ? range_cache : nullptr),
        scores_(shape.K) {}

  // The cached features of the listed instances (ListedFeatureCache) and the cached ranges of
  // the others (RangeCache), or null.
  const ListedFeatureCache* cache() const { return cache_; }
  const RangeCache* range_cache() const { return range_cache_; }
  const double* weights() const { return v_; }

  // One step on `instance` (index i of the instances: its cached features, when cached);
  // returns its weighted loss before the step.
  double step(const LocalInstance& instance, double eta, std::size_t i = ~std::size_t{0}) {
    const std::size_t K = shape_.K;
    const double factor = 1.0 - eta * lambda_;
    decay_ *= factor;
    if (only_gold(shape_, instance)) {
      // P(gold) = 1 exactly, so the loss is 0 and the gradient step adds v * (-0.0) to each of
      // the instance's weights, which leaves them as they are: only the decay remains.
      scale_ *= factor;
      if (scale_ < 1e-9) rescale();
      return instance.weight * 0.0;
    }
    // An instance with a candidate list looks its features up once, for scores and gradient.
    // One without a list keeps its feature ranges for the gradient (ranged).
    const bool has_list = shape_.candidates && instance.candidates >= 0;
    const bool listed = has_list && !shape_.mask, ranged = !has_list;
    if (listed && cache_ && cache_->has(i)) return cached_step(instance, eta, i);
    if (ranged && range_cache_ && i != ~std::size_t{0}) return cached_ranged_step(instance, eta, i);
    if (listed)
      softmax_listed_scores(shape_, items_, instance, v_, scale_, scores_.data(), visits_);
    else if (ranged)
      softmax_ranged_scores(shape_, items_, instance, v_, scale_, scores_.data(), ranges_);
    else
      softmax_raw_scores(shape_, items_, instance, v_, scale_, scores_.data());
    const double gold_score = scores_[instance.gold];
    const double loss = softmax_normalize_instance(shape_, instance, scores_.data()) - gold_score;
    scores_[instance.gold] -= 1.0;  // P - onehot
    scale_ *= factor;
    const double rate = -eta * instance.weight / scale_;
    if (shape_.candidates && instance.candidates >= 0) {  // the others are 0
      const CandidateLists& lists = *shape_.candidates;
      for (std::size_t i = lists.offsets[instance.candidates];
           i < lists.offsets[instance.candidates + 1]; ++i)
        scores_[lists.classes[i]] *= rate;
    } else {
      for (std::size_t c = 0; c < K; ++c) scores_[c] *= rate;
    }
    if (listed)
      add_listed_gradient(shape_, instance, visits_, scores_.data(), v_);
    else if (ranged)
      add_ranged_gradient(shape_, instance, ranges_, scores_.data(), v_);
    else
      add_instance_gradient(shape_, items_, instance, scores_.data(), v_);
    if (touched_) mark(instance, listed, ranged);
    if (scale_ < 1e-9) rescale();
    return instance.weight * loss;
  }

  // step() of a listed instance from its cached features: the same arithmetic in the same
  // order (see ListedFeatureCache).
  double cached_step(const LocalInstance& instance, double eta, std::size_t i) {
    const double factor = 1.0 - eta * lambda_;
    const ListedEntry* entries = cache_->begin(i);
    const std::size_t n_entries = cache_->size(i);
    {
      double loss;
      if (fused_cached_step(instance, eta, factor, entries, n_entries, cache_->stepped(i), loss))
        return loss;
    }
    cached_listed_scores(shape_, instance, entries, n_entries, v_, scale_, scores_.data());
    const double gold_score = scores_[instance.gold];
    const double loss = softmax_normalize_instance(shape_, instance, scores_.data()) - gold_score;
    scores_[instance.gold] -= 1.0;  // P - onehot
    scale_ *= factor;
    const double rate = -eta * instance.weight / scale_;
    const CandidateLists& lists = *shape_.candidates;
    const std::size_t first = lists.offsets[instance.candidates];
    const std::size_t last = lists.offsets[instance.candidates + 1];
    for (std::size_t c = first; c < last; ++c) scores_[lists.classes[c]] *= rate;
    const std::size_t stepped = cache_->stepped(i);  // (the others: tied copies)
    add_cached_gradient(shape_, instance, entries, stepped, scores_.data(), v_);
    if (touched_) {
      for (std::size_t e = 0; e < stepped; ++e)
        touched_[entries[e].f() >> 6] |= uint64_t{1} << (entries[e].f() & 63);
      if (shape_.R > 0) {
        const std::size_t dense =
            shape_.features->size() + static_cast<std::size_t>(instance.context) * shape_.K;
        for (std::size_t c = first; c < last; ++c)
          mark_range(touched_, dense + lists.classes[c], dense + lists.classes[c] + 1);
      }
    }
    if (scale_ < 1e-9) rescale();
    return instance.weight * loss;
  }

  /*
   * cached_step in the slots of the instance's list (s [n], n <= 256, slot k holding class
   * cls[k]) instead of the classes' cells of scores_ [K]: the scores (dense row or 0, the
   * entries' weights in order, scale, base), softmax_normalize_over's maximum, exponentials
   * (fast_exp), sum in list order and probabilities, p - [gold] times the rate, and the
   * gradient of the first `stepped` entries; the same operations on the same values in the
   * same order, bit for bit. What goes is the K-wide clear of scores_ that
   * softmax_normalize_over writes every step (145 classes on CoNLL-2000's pairwise factor,
   * 1,094 on POS), its scratch vector and the class indirection of every entry. False
   * (nothing done) when the gold class is not listed.
   */
  bool fused_cached_step(const LocalInstance& instance, double eta, double factor,
                         const ListedEntry* entries, std::size_t n_entries, std::size_t stepped,
                         double& loss_out) {
    const CandidateLists& lists = *shape_.candidates;
    const std::size_t first = lists.offsets[instance.candidates];
    const std::size_t n = lists.offsets[instance.candidates + 1] - first;
    const int32_t* cls = &lists.classes[first];
    std::size_t gold = n;
    for (std::size_t k = 0; k < n; ++k)
      if (cls[k] == instance.gold) gold = k;
    if (gold == n || n > ListedEntry::kSlots) return false;
    double s[ListedEntry::kSlots];  // [n] scores, then probabilities, then the gradient
    double* dense = shape_.R > 0 ? v_ + shape_.features->size() +
                                       static_cast<std::size_t>(instance.context) * shape_.K
                                 : nullptr;
    for (std::size_t k = 0; k < n; ++k) s[k] = dense ? dense[cls[k]] : 0.0;
    for (std::size_t e = 0; e < n_entries; ++e) s[entries[e].slot()] += v_[entries[e].f()];
    const double* base = lists.base.empty() ? nullptr : &lists.base[first];
    for (std::size_t k = 0; k < n; ++k) {
      if (scale_ != 1.0) s[k] *= scale_;
      if (base) s[k] += base[k];
    }
    const double gold_score = s[gold];
    double m = -std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < n; ++k) m = std::max(m, s[k]);
    double sum = 0.0;
    for (std::size_t k = 0; k < n; ++k) sum += s[k] = fast_exp(s[k] - m);
    const double inv = 1.0 / sum;
    for (std::size_t k = 0; k < n; ++k) s[k] = s[k] * inv;
    const double loss = (m + std::log(sum)) - gold_score;
    s[gold] -= 1.0;  // P - onehot
    scale_ *= factor;
    const double rate = -eta * instance.weight / scale_;
    for (std::size_t k = 0; k < n; ++k) s[k] *= rate;
    for (std::size_t e = 0; e < stepped; ++e) v_[entries[e].f()] += s[entries[e].slot()];
    if (dense)
      for (std::size_t k = 0; k < n; ++k) dense[cls[k]] += s[k];
    if (touched_) {
      for (std::size_t e = 0; e < stepped; ++e)
        touched_[entries[e].f() >> 6] |= uint64_t{1} << (entries[e].f() & 63);
      if (dense) {
        const std::size_t at = shape_.features->size() + static_cast<std::size_t>(instance.context) * shape_.K;
        for (std::size_t k = 0; k < n; ++k) mark_range(touched_, at + cls[k], at + cls[k] + 1);
      }
    }
    if (scale_ < 1e-9) rescale();
    loss_out = instance.weight * loss;
    return true;
  }

  // step() of an unlisted instance from its cached ranges (RangeCache): the same arithmetic in
  // the same order.
  double cached_ranged_step(const LocalInstance& instance, double eta, std::size_t i) {
    const std::size_t K = shape_.K;
    const double factor = 1.0 - eta * lambda_;
    {
      const double next_scale = scale_ * factor;
      double loss;
      if (fused_ranged_step(shape_, instance, *range_cache_, i, v_, scale_,
                            -eta * instance.weight / next_scale, touched_, loss)) {
        scale_ = next_scale;
        if (scale_ < 1e-9) rescale();
        return instance.weight * loss;
      }
    }
    cached_ranged_scores(shape_, instance, *range_cache_, i, v_, scale_, scores_.data());
    const double gold_score = scores_[instance.gold];
    const double loss = softmax_normalize(scores_.data(), K) - gold_score;
    scores_[instance.gold] -= 1.0;  // P - onehot
    scale_ *= factor;
    const double rate = -eta * instance.weight / scale_;
    for (std::size_t c = 0; c < K; ++c) scores_[c] *= rate;
    add_cached_ranged_gradient(shape_, instance, *range_cache_, i, scores_.data(), v_, touched_);
    if (scale_ < 1e-9) rescale();
    return instance.weight * loss;
  }

  // Folds the scale into the weights (v becomes w).
  void rescale() {
    const std::size_t D = shape_.dimension();
    for (std::size_t d = 0; d < D; ++d) v_[d] *= scale_;
    scale_ = 1.0;
    rescaled_ = true;
  }

  double scale() const { return scale_; }
  double decay() const { return decay_; }
  bool rescaled() const { return rescaled_; }

 private:
  // Marks the weights the instance's gradient changed: its listed features and dense cells, or
  // every feature of its attributes and its whole dense row.
  void mark(const LocalInstance& instance, bool listed, bool ranged) {
    const SparseFeatures& features = *shape_.features;
    const std::size_t dense = features.size() + static_cast<std::size_t>(instance.context) * shape_.K;
    if (listed) {
      for (const FeatureVisit& visit : visits_)
        touched_[visit.f >> 6] |= uint64_t{1} << (visit.f & 63);
      if (shape_.R > 0) {
        const CandidateLists& lists = *shape_.candidates;
        for (std::size_t i = lists.offsets[instance.candidates];
             i < lists.offsets[instance.candidates + 1]; ++i)
          mark_range(touched_, dense + lists.classes[i], dense + lists.classes[i] + 1);
      }
      return;
    }
    if (ranged) {
      for (const FeatureRange& range : ranges_) mark_range(touched_, range.first, range.last);
    } else {
      for (int32_t k = 0; k < instance.span; ++k) {
        const std::size_t item = instance.item + k, shift = k * shape_.A;
        for (std::size_t e = items_.item_offsets[item]; e < items_.item_offsets[item + 1]; ++e) {
          const std::size_t a = items_.ids[e] + shift;
          mark_range(touched_, features.offsets[a], features.offsets[a + 1]);
        }
      }
    }
    if (shape_.R > 0) mark_range(touched_, dense, dense + shape_.K);
  }

  ItemArrays items_;
  const SoftmaxModelShape& shape_;
  double* v_;  // [dimension] weights / scale_
  double scale_ = 1.0;
  double decay_ = 1.0;
  bool rescaled_ = false;
  double lambda_;
  uint64_t* touched_;  // [dimension / 64 + 1] or null
  const ListedFeatureCache* cache_;  // features of the listed instances, or null
  const RangeCache* range_cache_;    // ranges of the unlisted instances, or null
  std::vector<double> scores_;  // [K]
  std::vector<FeatureVisit> visits_;  // features of the current instance's listed classes
  std::vector<FeatureRange> ranges_;  // feature ranges of the current unlisted instance
};

}  // namespace septa::crf

#endif  // SEPTA_CRF_OPTIM_SGD_STATE_H
