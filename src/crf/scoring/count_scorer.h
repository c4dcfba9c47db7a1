// -a separate-counts: CR-F factors estimated from counts, no optimisation (the "seconds" end of
// the trade-off; after Zhu et al.'s empirical co-occurrence rate networks, 2013).
//
// Each attribute a present at a position is an expert with an add-beta estimate backed off to
// the class prior:  P(k | a) = (c(a,k) + beta P(k)) / (c(a) + beta).
// The experts of an item (its n attributes; for pairs, those of both positions) are combined
// as a normalised geometric mean:  P(k | x) ∝ prod_a P(k | a)^(1/n).
// Terms constant in k cancel, leaving  log P(k | x) = log P(k) + (1/n) sum_{(a,k) seen} r(a,k)
// + const, with r(a,k) = log(c(a,k) + beta P(k)) - log(beta P(k)): sparse, like the ME factors.
#pragma once

#include <vector>

#include "crf/scoring/separate_scorer.h"

namespace septa::crf {

class CountScorer : public FactorScorer {
 public:
  CountScorer() = default;
  CountScorer(std::size_t A, std::size_t L, SparseFeatures unary, std::vector<double> unary_log_ratio,
              std::vector<double> label_log_prior, SparseFeatures pairwise,
              std::vector<double> pair_log_ratio, std::vector<double> pair_log_prior,
              std::vector<int32_t> pair_first, std::vector<int32_t> pair_second, double floor);

  static constexpr double kBeta = 1.0;  // back-off mass of the class prior
  // The pairwise factor at a position normalises over the label pairs seen in training whose
  // labels both have unary probability >= kPairBeam times the best (the pairs -a separate's
  // default --pair-beam lists; every pair when none is left); the other cells are at the floor.
  static constexpr double kPairBeam = 0.01;

  bool finite() const override {
    return all_finite(unary_ratio_) && all_finite(label_prior_) && all_finite(pair_ratio_) &&
           all_finite(pair_prior_);
  }
  std::size_t feature_count() const override {
    return unary_ratio_.size() + pair_ratio_.size();
  }
  void write(ByteWriter& out) const override;
  static std::unique_ptr<CountScorer> read(ByteReader& in);
  void dump(std::ostream& out, const Encoder& encoder, std::size_t top) const override;
  std::vector<WeightedFeature> state_features(const Encoder& encoder) const override;
  std::vector<WeightedFeature> transition_features(const Encoder& encoder) const override;

 protected:
  void unary_probabilities(const SequenceView& sequence, double* out) const override;
  void prepare_pairs(const SequenceView& sequence) const override;
  void pair_probabilities(const SequenceView& sequence, const double* unary, std::size_t t,
                          std::vector<uint32_t>& cells,
                          std::vector<double>& probabilities) const override;

 private:

  std::vector<double> unary_ratio_;    // [F_unary] r(a, k)
  std::vector<double> label_prior_;    // [L] log P(label)
  std::vector<double> pair_ratio_;     // [F_pair] r(a, k)
  std::vector<double> pair_prior_;     // [K] log P(pair)
};

}  // namespace septa::crf
