// Scorers of separately trained CR-F models: a unary and a pairwise factor, combined by the
// co-occurrence rate. Two factor kinds: maximum-entropy classifiers (-a separate) and smoothed
// counts (-a separate-counts).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "crf/scoring/scorer.h"
#include "crf/objectives/softmax_objective.h"
#include "crf/features/sparse_features.h"

namespace septa::crf {

// Common part of the CR-F scorers: a unary factor over L labels and a pairwise factor over the
// K label pairs seen in training, both on sparse features of A attributes; turns the factors'
// probabilities into lattice potentials.
class FactorScorer : public Scorer {
 public:
  void potentials(const SequenceView& sequence, Lattice& lattice) const override;
  // Up to 64 labels: the transitions factored (FactoredTransitions), O(L + cells) per position.
  bool best_labels(const SequenceView& sequence, int* labels_out) const override;
  bool fits(std::size_t A, std::size_t L) const override { return A == A_ && L == L_; }
  std::size_t labels() const { return L_; }

 protected:
  FactorScorer() = default;
  // Pair class k is the label pair (pair_first[k], pair_second[k]).
  FactorScorer(std::size_t A, std::size_t L, std::vector<int32_t> pair_first,
               std::vector<int32_t> pair_second, double floor)
      : A_(A), L_(L), floor_(floor), pair_first_(std::move(pair_first)),
        pair_second_(std::move(pair_second)) {}

  // P(y_t | x) into out [T][L].
  virtual void unary_probabilities(const SequenceView& sequence, double* out) const = 0;
  // Called once per sequence after unary_probabilities and before pair_probabilities, which
  // potentials() then calls for t = 0, 1, ..., T-2 in order (a scorer may look up all
  // positions' features here, so that their cache misses overlap).
  virtual void prepare_pairs(const SequenceView& /*sequence*/) const {}
  // P(y_t = a, y_{t+1} = b | x) of position t < T-1, given the unary probabilities unary
  // [T][L]: appends each cell a L + b that gets a probability to `cells` and the probability
  // to `probabilities` (each cell at most once; unlisted cells have probability 0).
  virtual void pair_probabilities(const SequenceView& sequence, const double* unary,
                                  std::size_t t, std::vector<uint32_t>& cells,
                                  std::vector<double>& probabilities) const = 0;

  // Builds pair_class_ (and next_seen_) from pair_first_ and pair_second_.
  void index_pairs();
  // The pair classes (a, b) with P(a) >= beam max P at t and P(b) >= beam max P at t+1, from
  // the unary probabilities unary_t and unary_next ([L] each), appended to out in the order of
  // a, then b.
  void beam_pairs(const double* unary_t, const double* unary_next, double beam,
                  std::vector<int32_t>& out) const;

  std::size_t A_ = 0;
  std::size_t L_ = 0;
  double floor_ = 1e-6;                  // probability floor for unseen pairs (never log 0)
  SparseFeatures unary_;                 // (attribute, label), attributes [0, A)
  SparseFeatures pairwise_;              // (attribute, pair class), attributes [0, 2A)
  std::vector<int32_t> pair_first_;      // [K] label at t of pair class k
  std::vector<int32_t> pair_second_;     // [K] label at t+1 of pair class k
  std::vector<int32_t> pair_class_;      // [L][L] class of (a, b), -1 unseen
  std::vector<uint64_t> next_seen_;      // [L] for L <= 64: bit b of a set when (a, b) is a class
};

// -a separate: two multinomial logistic-regression factors on sparse template features.
class SeparateScorer : public FactorScorer {
 public:
  SeparateScorer() = default;
  // Pair classes are the label pairs seen in training: class k is (pair_first[k], pair_second[k]).
  // `beam` > 0 restricts the pairwise softmax at each position to the label pairs whose labels
  // both pass the unary beam (see candidate_pairs); 0 normalises over all pairs.
  // `stacked`: the pairwise factor is stacked on the unary factor,
  //   P(a, b | x) = P_u(a | x, t) P_u(b | x, t+1) exp(g(a, b | x)) / Z_t,
  // its own weights g (sparse (attribute, pair) weights and a pair bias) learning only what the
  // two unary predictions miss: the label interaction. The unary log-probabilities enter as
  // fixed offsets of the pair scores, in training and in tagging alike; with g = const the
  // pair table is the product of the unary predictions and every co-occurrence rate is 1.
  SeparateScorer(std::size_t A, std::size_t L, std::vector<int32_t> pair_first,
                 std::vector<int32_t> pair_second, double floor, double beam, bool stacked);
  // Installs a factor's features and zero weights (the two may be built concurrently).
  void set_unary_features(SparseFeatures unary);
  void set_pair_features(SparseFeatures pairwise);

  SoftmaxModelShape unary_shape() const;
  SoftmaxModelShape pair_shape() const;
  std::vector<double>& unary_weights() { return unary_weights_; }
  // The unary factor's features, for a caller that moves them out and back (over ranks, a rank
  // that does not write the model need not hold them while the pairwise factor trains).
  SparseFeatures& unary_features() { return unary_; }
  std::vector<double>& pair_weights() { return pair_weights_; }
  // The pairwise factor's features, for a caller that trains them tied (pair_ties.h) and puts
  // them back.
  SparseFeatures& pair_features() { return pairwise_; }
  double beam() const { return beam_; }
  // The pair classes (a, b) seen in training with P(a) >= beam max P at t and P(b) >= beam
  // max P at t+1, from the unary probabilities at t and t+1 ([L] each), appended to out.
  void candidate_pairs(const double* unary_t, const double* unary_next,
                       std::vector<int32_t>& out) const;
  bool stacked() const { return stacked_; }
  int32_t pair_class(int32_t a, int32_t b) const { return pair_class_[a * L_ + b]; }
  // The offset of pair class k = (a, b) when stacked: log P_u(a) + log P_u(b), each floored;
  // unary_t, unary_next [L].
  double pair_base(int32_t k, const double* unary_t, const double* unary_next) const {
    return std::log(std::max(unary_t[pair_first_[k]], floor_)) +
           std::log(std::max(unary_next[pair_second_[k]], floor_));
  }

  // P(y_t | x) into out [T][L].
  void unary_probabilities(const SequenceView& sequence, double* out) const override;

  bool finite() const override {
    return all_finite(unary_weights_) && all_finite(pair_weights_);
  }
  std::size_t feature_count() const override {
    return unary_weights_.size() + pair_weights_.size();
  }
  void write(ByteWriter& out) const override;
  static std::unique_ptr<SeparateScorer> read(ByteReader& in);
  void dump(std::ostream& out, const Encoder& encoder, std::size_t top) const override;
  std::vector<WeightedFeature> state_features(const Encoder& encoder) const override;
  std::vector<WeightedFeature> transition_features(const Encoder& encoder) const override;

 protected:
  void pair_probabilities(const SequenceView& sequence, const double* unary, std::size_t t,
                          std::vector<uint32_t>& cells,
                          std::vector<double>& probabilities) const override;

 private:
  double beam_ = 0.0;                    // unary beam of the pairwise softmax, 0: all pairs
  bool stacked_ = false;                 // pair scores offset by the unary log-probabilities
  std::vector<double> unary_weights_;    // [F_unary + L] sparse weights, then label bias
  std::vector<double> pair_weights_;     // [F_pair + K] sparse weights, then pair bias
};

}  // namespace septa::crf
