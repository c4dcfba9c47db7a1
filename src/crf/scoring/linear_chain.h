// The linear-chain CRF scorer: sparse state features and a dense [L][L] transition matrix.
// Shared by standard (L-BFGS) and piecewise training.
#pragma once

#include <vector>

#include "crf/scoring/scorer.h"
#include "crf/features/sparse_features.h"

namespace septa::crf {

class LinearChainScorer : public Scorer {
 public:
  LinearChainScorer() = default;
  LinearChainScorer(SparseFeatures states, std::size_t L)
      : states_(std::move(states)), L_(L), weights_(states_.size() + L * L, 0.0) {}

  std::size_t labels() const { return L_; }
  const SparseFeatures& states() const { return states_; }
  std::size_t transition_offset() const { return states_.size(); }
  std::vector<double>& weights() { return weights_; }
  const std::vector<double>& weights() const { return weights_; }

  // Fills `lattice` from weights `w` (the scorer's own weights by default).
  void fill(const SequenceView& sequence, const double* w, Lattice& lattice) const;

  void potentials(const SequenceView& sequence, Lattice& lattice) const override {
    fill(sequence, weights_.data(), lattice);
  }
  bool fits(std::size_t A, std::size_t L) const override { return states_.A == A && L_ == L; }
  bool finite() const override { return all_finite(weights_); }
  std::size_t feature_count() const override { return weights_.size(); }
  void write(ByteWriter& out) const override;
  static std::unique_ptr<LinearChainScorer> read(ByteReader& in);
  void dump(std::ostream& out, const Encoder& encoder, std::size_t top) const override;
  std::vector<WeightedFeature> state_features(const Encoder& encoder) const override;
  std::vector<WeightedFeature> transition_features(const Encoder& encoder) const override;

 private:
  SparseFeatures states_;        // (attribute, label) features, ids [0, F_state)
  std::size_t L_ = 0;
  std::vector<double> weights_;  // [F_state + L*L] state weights, then transitions [prev][cur]
};

}  // namespace septa::crf
