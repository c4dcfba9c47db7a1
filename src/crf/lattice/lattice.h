// Lattice math on dense arrays: forward-backward, marginals, Viterbi. Knows nothing of features.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace septa::crf {

// A linear chain of T positions and L labels with log-potentials
//   score(y) = sum_t state(t, y_t) + sum_{t>=1} trans(t, y_{t-1}, y_t)
// where trans is either shared by all positions or given per position.
class Lattice {
 public:
  // Prepares for T positions and L labels; `per_position_transitions` selects [T-1][L][L]
  // transition potentials instead of one shared [L][L] matrix. State potentials are zeroed, and
  // so are transitions, except shared ones when L is unchanged (see set_shared_transitions).
  void reset(std::size_t T, std::size_t L, bool per_position_transitions);
  // Like reset, but leaves the state and per-position transition potentials unset (the buffers
  // keep their capacity and old contents), for a caller that writes every one of them.
  void resize(std::size_t T, std::size_t L, bool per_position_transitions);
  // Sets the shared [L][L] transition log-potentials (after reset with per_position false);
  // they stay across resets with the same L, so their exponentials are computed once. A
  // nonzero `key` equal to the last call's promises the same potentials (e.g. one evaluation's
  // weights): the comparison that else detects them is skipped.
  void set_shared_transitions(const double* trans, uint64_t key = 0);

  std::size_t length() const { return T_; }
  std::size_t labels() const { return L_; }
  double* state(std::size_t t) { return &state_[t * L_]; }              // [L] of position t
  const double* state(std::size_t t) const { return &state_[t * L_]; }
  // Transition log-potentials into position t (t >= 1): [L][L] indexed [previous][current].
  double* transition(std::size_t t) {
    exp_trans_stale_ = true;
    return &trans_[per_position_ ? (t - 1) * L_ * L_ : 0];
  }
  const double* transition(std::size_t t) const {
    return &trans_[per_position_ ? (t - 1) * L_ * L_ : 0];
  }

  // Runs forward-backward; returns log Z. Afterwards node_marginal / edge marginals are valid.
  double forward_backward();
  // forward_backward() of two lattices (each gets its own results bit for bit), their
  // recursions interleaved where they share their transitions, so that one's chains of
  // dependent multiply-adds fill the other's waits. Returns their log Z.
  static std::pair<double, double> forward_backward_pair(Lattice& x, Lattice& y);
  // Node marginal P(y_t = j | x) after forward_backward().
  double node_marginal(std::size_t t, std::size_t j) const { return marginal_[t * L_ + j]; }
  // [L] of position t: node_marginal(t, j) for every j.
  const double* node_marginals(std::size_t t) const { return &marginal_[t * L_]; }
  // Adds into `out` [L][L] the edge marginals P(y_{t-1}=i, y_t=j | x) of position t >= 1.
  void add_edge_marginals(std::size_t t, double scale, double* out) const;
  // Adds scale * sum_{t>=1} P(y_{t-1}=i, y_t=j | x) into `out` [L][L] (faster than per position).
  void add_edge_marginal_sums(double scale, double* out);
  // Log-potential of a labelling (length T).
  double path_score(const int* labels) const;
  // Highest-scoring labelling (ties go to the lowest label); returns its score.
  double viterbi(int* labels_out) const;

 private:
  std::size_t T_ = 0;
  std::size_t L_ = 0;
  bool per_position_ = false;
  std::vector<double> state_;     // [T][L] state log-potentials (input), then 8 of padding
  std::vector<double> trans_;     // [L][L] shared or [T-1][L][L] per position (input)
  std::vector<double> exp_state_; // [T][L] exp(state - state_shift_[t]), then 8 of padding
  std::vector<double> exp_trans_; // same shape as trans_: exp(trans - trans_shift_)
  // Shared transitions only, rows padded with zeros to Lp = L rounded up to the lanes (4 or 8)
  // of vector_matrix:
  std::vector<double> exp_trans_padded_;      // [L][Lp] exp_trans_ [prev][cur]
  std::vector<double> exp_trans_transposed_;  // [L][Lp] exp_trans_ transposed [cur][prev]
  std::vector<double> edge_sum_;  // [L][L] + [T][Lp] scratch of add_edge_marginal_sums
  std::vector<double> state_shift_;  // [T] max of state(t, .)
  std::vector<double> trans_shift_;  // [1] or [T-1] max of each transition matrix
  std::vector<double> alpha_;     // [T][L] forward scores, normalised to sum 1 per position
  std::vector<double> beta_;      // [T][L] backward scores, scaled by the same factors
  std::vector<double> scale_;     // [T] forward normalisers c_t
  std::vector<double> marginal_;  // [T][L] node marginals
  std::vector<double> tmp_;       // [L] scratch of the backward pass
  double log_z_ = 0.0;
  bool exp_trans_stale_ = true;
  uint64_t trans_key_ = 0;        // key of the last set_shared_transitions
  bool log_domain_ = false;       // alpha_/beta_ hold log scores (fallback for extreme inputs)

  void size_passes();  // the buffers of the scaled passes for T_, L_
  bool forward_backward_scaled();  // per-position transitions
  void forward_backward_log();
  // Shared transitions: 4 lanes (target clones) or 8 (AVX-512), the same bits.
  bool shared_scaled();
  bool shared_scaled_wide();
  template <int W> bool shared_scaled_lanes();
  template <int W> bool shared_transition_exponentials();
  bool state_exponentials(std::size_t t);
  bool rescale(std::size_t t, double c, double& log_z);
  template <int W> bool forward_step(std::size_t t, double& log_z);
  void backward_right(std::size_t t);
  void node_marginals_of(std::size_t t);
  template <int W> void backward_step(std::size_t t);
  static void shared_pair(Lattice& x, Lattice& y, bool& ok_x, bool& ok_y);
  static void shared_pair_wide(Lattice& x, Lattice& y, bool& ok_x, bool& ok_y);
  template <int W> static void shared_pair_lanes(Lattice& x, Lattice& y, bool& ok_x, bool& ok_y);
  void shared_edge_sums_narrow(double scale, double* out);
  void shared_edge_sums_wide(double scale, double* out);
  template <int W> void shared_edge_sums(double scale, double* out);
};

}  // namespace septa::crf
