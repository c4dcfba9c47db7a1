// The linear-chain CRF scorer: sparse state features, a dense [L][L] transition matrix and,
// with observation-conditioned B templates, sparse (edge attribute, label pair) transition
// features. Shared by standard (L-BFGS), online and piecewise training.
#pragma once

#include <vector>

#include "crf/features/masked_rows.h"
#include "crf/scoring/scorer.h"
#include "crf/features/sparse_features.h"

namespace septa::crf {

// The state features that fire in one sequence, item by item (LinearChainScorer::fill_listed);
// scratch kept across sequences.
struct FiredFeatures {
  std::vector<uint32_t> ids;      // [n + padding] feature ids; item t's: [starts[t], starts[t+1])
  std::vector<uint8_t> classes;   // [n] their classes
  std::vector<uint32_t> starts;   // [T+1]
  std::vector<uint16_t> lengths;  // [entries] features of each attribute entry, in entry order
};

class LinearChainScorer : public Scorer {
 public:
  LinearChainScorer() = default;
  LinearChainScorer(SparseFeatures states, std::size_t L)
      : states_(std::move(states)), L_(L), weights_(states_.size() + L * L, 0.0) {
    narrow_classes();
  }
  // With observation-conditioned transitions: `edges` has classes prev * L + cur.
  LinearChainScorer(SparseFeatures states, SparseFeatures edges, std::size_t L)
      : states_(std::move(states)), edges_(std::move(edges)), L_(L), conditioned_(true),
        weights_(states_.size() + L * L + edges_.size(), 0.0) {
    narrow_classes();
  }
  // The state features' classes as bytes [F_state] (L <= 256; else empty): a quarter of the
  // cache lines of states().classes for the loops over random attribute rows.
  const std::vector<uint8_t>& classes8() const { return classes8_; }

  std::size_t labels() const { return L_; }
  const SparseFeatures& states() const { return states_; }
  // (edge attribute, label pair) features; empty without observation-conditioned templates.
  const SparseFeatures& edges() const { return edges_; }
  // Whether the model was built from observation-conditioned B templates (even when none of
  // their features survived the frequency cut-off).
  bool conditioned() const { return conditioned_; }
  std::size_t transition_offset() const { return states_.size(); }
  std::size_t edge_offset() const { return states_.size() + L_ * L_; }
  std::vector<double>& weights() { return weights_; }
  const std::vector<double>& weights() const { return weights_; }

  // Fills `lattice` from weights `w` (the scorer's own weights by default): per-position
  // transitions when the scorer has edge features, else the shared matrix. A nonzero
  // `weights_key` names w for the lattice's cache of the shared transitions: equal keys, equal
  // weights (Lattice::set_shared_transitions).
  void fill(const SequenceView& sequence, const double* w, Lattice& lattice,
            uint64_t weights_key = 0) const;
  // fill() for a sequence without values, when listed() holds, also listing the features that
  // fire in `fired`, in the order their weights are added (the same sums, the same bits).
  void fill_listed(const SequenceView& sequence, const double* w, Lattice& lattice,
                   uint64_t weights_key, FiredFeatures& fired) const;
  // The state features' rows [A] as (first feature, class mask) for fill_masked(), where it
  // applies: shared transitions, L <= 32 (wide_masked_rows: 33..64), a processor with AVX-512, the classes of every row
  // increasing; else empty.
  std::vector<MaskedRange> masked_rows() const;
  // fill() for a sequence without values from `rows` = masked_rows(): the same sums, the same
  // bits.
  void fill_masked(const SequenceView& sequence, const double* w, const MaskedRange* rows,
                   Lattice& lattice, uint64_t weights_key) const;
  // masked_rows() and fill_masked() for 32 < L <= 64 (the same conditions otherwise).
  std::vector<WideMaskedRange> wide_masked_rows() const;
  void fill_masked(const SequenceView& sequence, const double* w, const WideMaskedRange* rows,
                   Lattice& lattice, uint64_t weights_key) const;
  // Whether fill_listed() applies: shared transitions and byte classes (L <= 256).
  bool listed() const { return !per_position() && !classes8_.empty(); }
  // Whether fill() gives `lattice` per-position transitions.
  bool per_position() const { return edges_.size() > 0; }

  void potentials(const SequenceView& sequence, Lattice& lattice) const override {
    fill(sequence, weights_.data(), lattice);
  }
  bool fits(std::size_t A, std::size_t L) const override {
    return states_.A == A && L_ == L && (!conditioned_ || edges_.A == A);
  }
  bool finite() const override { return all_finite(weights_); }
  std::size_t feature_count() const override { return weights_.size(); }
  bool conditioned_transitions() const override { return conditioned_; }
  uint32_t format_version() const override { return conditioned_ ? 5 : 4; }
  void write(ByteWriter& out) const override;
  static std::unique_ptr<LinearChainScorer> read(ByteReader& in);
  void dump(std::ostream& out, const Encoder& encoder, std::size_t top) const override;
  std::vector<WeightedFeature> state_features(const Encoder& encoder) const override;
  std::vector<WeightedFeature> transition_features(const Encoder& encoder) const override;
  std::vector<ConditionedTransition> conditioned_transition_features(
      const Encoder& encoder) const override;

 private:
  SparseFeatures states_;        // (attribute, label) features, ids [0, F_state)
  SparseFeatures edges_;         // (edge attribute, prev * L + cur) features, ids [0, F_edge)
  std::size_t L_ = 0;
  bool conditioned_ = false;
  // [F_state + L*L + F_edge] state weights, transitions [prev][cur], edge features
  std::vector<double> weights_;
  std::vector<uint8_t> classes8_;  // [F_state] states_.classes as bytes, or empty (L > 256)

  void narrow_classes();
};

}  // namespace septa::crf
