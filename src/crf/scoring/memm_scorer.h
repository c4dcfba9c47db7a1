// Maximum-entropy Markov model (McCallum, Freitag & Pereira 2000), the label-bias baseline:
//   P(y|x) = prod_t P(y_t | y_{t-1}, x_t),
//   P(y_t = j | y_{t-1} = i, x_t) = exp(s_t(j) + W[i][j]) / sum_{j' in succ(i)} exp(s_t(j') + W[i][j'])
// with s_t the sparse state scores, i = START before the first item, and succ(i) the labels seen
// after i in training (each source state normalises over its own successors, as in the original).
#pragma once

#include <vector>

#include "crf/scoring/scorer.h"
#include "crf/objectives/softmax_objective.h"
#include "crf/features/sparse_features.h"

namespace septa::crf {

class MemmScorer : public Scorer {
 public:
  MemmScorer() = default;
  MemmScorer(std::size_t A, std::size_t L, SparseFeatures states, std::vector<char> successors,
             double floor);

  // Contexts are previous labels 0..L-1 and START = L.
  SoftmaxModelShape shape() const { return {&states_, A_, L_, L_ + 1, &successors_}; }
  std::vector<double>& weights() { return weights_; }

  void potentials(const SequenceView& sequence, Lattice& lattice) const override;
  bool fits(std::size_t A, std::size_t L) const override { return A == A_ && L == L_; }
  bool finite() const override { return all_finite(weights_); }
  std::size_t feature_count() const override { return weights_.size(); }
  void write(ByteWriter& out) const override;
  static std::unique_ptr<MemmScorer> read(ByteReader& in);
  void dump(std::ostream& out, const Encoder& encoder, std::size_t top) const override;
  std::vector<WeightedFeature> state_features(const Encoder& encoder) const override;
  std::vector<WeightedFeature> transition_features(const Encoder& encoder) const override;

 private:
  std::size_t A_ = 0;
  std::size_t L_ = 0;
  double floor_ = 1e-6;            // probability given to successors never seen in training
  SparseFeatures states_;          // (attribute, label)
  std::vector<char> successors_;   // [L+1][L] 1 when label j was seen after context i
  std::vector<double> weights_;    // [F + (L+1) * L] state weights, then W[context][label]
};

}  // namespace septa::crf
