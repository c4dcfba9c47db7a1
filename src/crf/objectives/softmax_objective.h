// Locally normalised classifiers over sparse features (maximum entropy / multinomial logistic
// regression): the factors of separate training, the pieces of piecewise training, the MEMM.
#pragma once

#include <vector>

#include "crf/features/dataset.h"
#include "crf/features/sparse_features.h"

namespace septa::crf {

// One classification instance: `span` consecutive items of a Dataset starting at `item`; the
// attributes of the k-th item are seen as attribute + k * A.
struct LocalInstance {
  std::size_t item = 0;
  int32_t span = 1;      // 1 (node) or 2 (edge)
  int32_t gold = 0;      // class
  int32_t context = 0;   // row of the dense context weights (e.g. previous label), 0 if unused
  float weight = 1.0f;
  int64_t candidates = -1;  // list of the classes it normalises over (CandidateLists), -1: all
};

// Per-instance class subsets: the softmax of instance i normalises over classes
// [offsets[c], offsets[c+1]) with c = instance.candidates (e.g. the label pairs that the unary
// factor allows); every other class has probability 0.
struct CandidateLists {
  std::vector<std::size_t> offsets{0};  // [lists+1]
  std::vector<int32_t> classes;         // [entries]
  std::vector<double> base;             // [entries] fixed offsets added to the scores, or empty
  std::size_t size() const { return offsets.size() - 1; }
};

// Weight layout: [F sparse (attribute, class)] then [R][K] dense context weights (R rows;
// with R = 1 a per-class bias). Classes disallowed in a context (mask) get probability 0.
struct SoftmaxModelShape {
  const SparseFeatures* features = nullptr;  // over A * max_span attributes
  std::size_t A = 0;                         // attributes of one item
  std::size_t K = 0;                         // classes
  std::size_t R = 0;                         // context rows (0: no dense weights)
  const std::vector<char>* mask = nullptr;   // [R][K] allowed classes, or null (all allowed)
  const CandidateLists* candidates = nullptr;  // per-instance class subsets, or null
  // [A * max_span] or null: tied[a] >= 0 when attribute a scores the features of attribute
  // tied[a] as its own, their gradient applied once, through tied[a] (a then has no features
  // of its own; see pair_ties.h). Only the listed-feature cache reads it: with it, every
  // instance with a loss must be cached (ListedFeatureCache checks).
  const std::vector<int32_t>* tied = nullptr;
  std::size_t dimension() const { return features->size() + R * K; }
};

// Items as flat arrays: the attributes of item i are ids/values[item_offsets[i]..[i+1]).
// values is null when every value is 1 (Dataset::unit_values): one random cache line less per
// item, and w * 1 = w, so the sums are the same bit for bit.
struct ItemArrays {
  const std::size_t* item_offsets;
  const int32_t* ids;
  const float* values;
  float value(std::size_t e) const { return values ? values[e] : 1.0f; }
  static ItemArrays of(const Dataset& d) {
    return {d.item_offsets.data(), d.attribute_ids.data(),
            d.unit_values ? nullptr : d.attribute_values.data()};
  }
  static ItemArrays of(const SequenceView& s) {  // items indexed from 0 within the sequence
    return {s.item_offsets, s.attribute_ids, s.attribute_values};
  }
};

// Scores of one instance: scores[k] = scale * (sum of sparse weights + dense[context][k]);
// disallowed classes get -infinity. An instance with a candidate list gets the scores of its
// listed classes only (plus their base offsets when with_base); the other entries of scores
// are then left undefined (every normaliser reads the listed ones only).
void softmax_raw_scores(const SoftmaxModelShape& shape, const ItemArrays& items,
                        const LocalInstance& instance, const double* w, double scale,
                        double* scores, bool with_base = true);
// Scores of the classes cls [n] only, as softmax_raw_scores computes them, plus base [n] when
// given; the other entries of scores [K] are left as they were.
void softmax_scores_over(const SoftmaxModelShape& shape, const ItemArrays& items,
                         const LocalInstance& instance, const double* w, double scale,
                         const int32_t* cls, std::size_t n, const double* base, double* scores);
// One visit of a feature by an instance with a candidate list: feature id (its class is
// features.classes[f]) and the value of the attribute that fires it.
struct FeatureVisit {
  uint32_t f;
  float value;
};
// For an instance with a candidate list (and no mask): its scores as softmax_raw_scores
// computes them, and in `visits` the features behind them in order, so that
// add_listed_gradient can then apply the instance's gradient without looking them up again.
void softmax_listed_scores(const SoftmaxModelShape& shape, const ItemArrays& items,
                           const LocalInstance& instance, const double* w, double scale,
                           double* scores, std::vector<FeatureVisit>& visits);
// The visits that softmax_listed_scores finds for such an instance (they do not depend on w).
void listed_feature_visits(const SoftmaxModelShape& shape, const ItemArrays& items,
                           const LocalInstance& instance, std::vector<FeatureVisit>& visits);
// add_instance_gradient of that instance from its visits: bit for bit the same sums.
void add_listed_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                         const std::vector<FeatureVisit>& visits, const double* class_gradient,
                         double* out);
// The feature range [first, last) of one attribute entry of an instance, and its value.
struct FeatureRange {
  uint32_t first, last;
  float value;
};
// For an instance without a candidate list: its scores as softmax_raw_scores computes them, and
// in `ranges` the non-empty feature ranges behind them in order, so that add_ranged_gradient
// can then apply the instance's gradient without looking its attributes up again.
void softmax_ranged_scores(const SoftmaxModelShape& shape, const ItemArrays& items,
                           const LocalInstance& instance, const double* w, double scale,
                           double* scores, std::vector<FeatureRange>& ranges);
// add_instance_gradient of that instance from its ranges: bit for bit the same sums.
void add_ranged_gradient(const SoftmaxModelShape& shape, const LocalInstance& instance,
                         const std::vector<FeatureRange>& ranges, const double* class_gradient,
                         double* out);
// Turns scores [K] into probabilities in place; returns log sum_k exp(scores[k]) (of the input).
double softmax_normalize(double* scores, std::size_t K);
// out += the weight gradient of an instance whose gradient with respect to its class scores is
// class_gradient [K]: sparse features of its attributes, then its dense context row. For an
// instance with a candidate list, class_gradient must be 0 outside the list.
void add_instance_gradient(const SoftmaxModelShape& shape, const ItemArrays& items,
                           const LocalInstance& instance, const double* class_gradient,
                           double* out);
// Like softmax_normalize over the classes in cls [n] only; the others get probability 0.
double softmax_normalize_over(double* scores, std::size_t K, const int32_t* cls, std::size_t n);
// The same without touching the other classes' entries (for a caller that reads the listed
// classes only): O(n) instead of O(K).
double softmax_normalize_listed(double* scores, const int32_t* cls, std::size_t n);
// softmax_normalize over the instance's candidate classes when it has a list, else all.
double softmax_normalize_instance(const SoftmaxModelShape& shape, const LocalInstance& instance,
                                  double* scores);
// Probabilities P(k | instance) into probs [K]; returns the log partition of the scores.
double softmax_probabilities(const SoftmaxModelShape& shape, const ItemArrays& items,
                             const LocalInstance& instance, const double* w, double* probs);

class SoftmaxObjective {
 public:
  SoftmaxObjective(const Dataset& data, const std::vector<LocalInstance>& instances,
                   SoftmaxModelShape shape, int threads);
  std::size_t dimension() const { return shape_.dimension(); }
  // Returns -sum_i weight_i log P(gold_i | x_i; w) and writes the gradient [dimension].
  double evaluate(const double* w, double* grad);

  static constexpr std::size_t kBlocks = 16;  // fixed: results do not depend on threads

 private:
  const Dataset& data_;
  const std::vector<LocalInstance>& instances_;
  SoftmaxModelShape shape_;
  int threads_;
  std::vector<std::size_t> block_bounds_;     // [kBlocks+1] instance ranges
  std::vector<std::vector<double>> partial_;  // [workers][dimension]
  std::vector<double> block_loss_;            // [kBlocks]
};

}  // namespace septa::crf
