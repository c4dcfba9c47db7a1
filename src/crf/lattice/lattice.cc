#include "crf/lattice/lattice.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "crf/lattice/fast_exp.h"
#include "crf/lattice/lattice_kernels.h"
#include "septa/error.h"

namespace septa::crf {

using namespace lattice_kernels;


void Lattice::reset(std::size_t T, std::size_t L, bool per_position_transitions) {
  const bool keep_shared = !per_position_transitions && !per_position_ && L == L_ &&
                           trans_.size() == L * L;
  T_ = T;
  L_ = L;
  per_position_ = per_position_transitions;
  state_.assign(T * L + kRowPadding, 0.0);
  if (!keep_shared) {
    const std::size_t trans_count = per_position_ ? (T > 0 ? T - 1 : 0) : 1;
    trans_.assign(trans_count * L * L, 0.0);
    exp_trans_stale_ = true;
  }
}

void Lattice::resize(std::size_t T, std::size_t L, bool per_position_transitions) {
  if (!per_position_transitions) {  // shared transitions keep reset's rules
    reset(T, L, false);
    return;
  }
  T_ = T;
  L_ = L;
  per_position_ = true;
  state_.resize(T * L + kRowPadding);
  trans_.resize((T > 0 ? T - 1 : 0) * L * L);
  exp_trans_stale_ = true;
}

void Lattice::set_shared_transitions(const double* trans, uint64_t key) {
  SEPTA_CHECK(!per_position_ && trans_.size() == L_ * L_);
  // The same weights for every sequence of an evaluation: keep their exponentials.
  if (!exp_trans_stale_ && key != 0 && key == trans_key_) return;
  trans_key_ = key;
  if (!exp_trans_stale_ && std::equal(trans, trans + L_ * L_, trans_.begin())) return;
  std::copy(trans, trans + L_ * L_, trans_.begin());
  exp_trans_stale_ = true;
}

/*
 * Scaled forward-backward (Rabiner 1989, section V.A), in the exponential domain for speed.
 * Potentials are shifted before exponentiation so nothing overflows:
 *   S[t][j] = exp(state[t][j] - m_t),  E_t[i][j] = exp(trans_t[i][j] - n_t)
 *   a[0][j] = S[0][j] / c_0
 *   a[t][j] = S[t][j] * sum_i a[t-1][i] E_t[i][j] / c_t        (c_t makes sum_j a[t][j] = 1)
 *   b[T-1][i] = 1
 *   b[t][i] = sum_j E_{t+1}[i][j] S[t+1][j] b[t+1][j] / c_{t+1}
 *   log Z = sum_t (m_t + log c_t) + sum_{t>=1} n_t
 *   P(y_t=j) = a[t][j] b[t][j]
 *   P(y_{t-1}=i, y_t=j) = a[t-1][i] E_t[i][j] S[t][j] b[t][j] / c_t
 * Scaling keeps every quantity in [0, 1]-ish range for chains of any length.
 */
double Lattice::forward_backward() {
  if (T_ == 0) {
    log_z_ = 0.0;
    return 0.0;
  }
  bool scaled;
  if (per_position_)
    scaled = forward_backward_scaled();
  else
    scaled = wide_lanes() ? shared_scaled_wide() : shared_scaled();
  log_domain_ = !scaled;
  if (log_domain_) forward_backward_log();
  return log_z_;
}

// The scaled passes return false, leaving the work to the log-domain pass, when the potentials
// of one position span more than kMaxSpan nats: exp() of the shifted values could then
// underflow and silently drop the dominant paths (scaled forward-backward is exact only while
// nothing underflows).

// The exponentials of the shared transitions E = exp(trans - n) (n their maximum), kept until
// the transitions change, also as [L][Lp] rows padded to W lanes and transposed (the backward
// pass then runs as vector_matrix over contiguous columns).
template <int W>
__attribute__((always_inline)) inline bool Lattice::shared_transition_exponentials() {
  if (!exp_trans_stale_) return true;
  const std::size_t L = L_;
  const double* __restrict w = trans_.data();
  double n, lowest;
  extremes(w, L * L, n, lowest);
  if (n - lowest > kMaxSpan) return false;
  trans_shift_.assign(1, n);
  exp_trans_.resize(L * L);
  double* __restrict e = exp_trans_.data();
  for (std::size_t r = 0; r < L * L; ++r) e[r] = fast_exp(w[r] - n);
  const std::size_t Lp = padded<W>(L);
  exp_trans_padded_.assign(L * Lp, 0.0);
  exp_trans_transposed_.assign(L * Lp, 0.0);
  for (std::size_t i = 0; i < L; ++i)
    for (std::size_t j = 0; j < L; ++j) {
      exp_trans_padded_[i * Lp + j] = e[i * L + j];
      exp_trans_transposed_[j * Lp + i] = e[i * L + j];
    }
  exp_trans_stale_ = false;
  return true;
}

// S[t] = exp(state[t] - m_t) (m_t its maximum); false when the states of t span too much.
__attribute__((always_inline)) inline bool Lattice::state_exponentials(std::size_t t) {
  const std::size_t L = L_;
  const double* s = &state_[t * L];
  double m, lowest;
  extremes(s, L, m, lowest);
  if (m - lowest > kMaxSpan) return false;
  state_shift_[t] = m;
  // Whole vectors of 8 (no scalar tail of L mod 8 exponentials): the lanes past L read the
  // next row's states (or the padding) and write the next row's exponentials, which that row
  // then overwrites.
  double* __restrict es = &exp_state_[t * L];
  const std::size_t Lp = padded<8>(L);
  for (std::size_t j = 0; j < Lp; ++j) es[j] = fast_exp(s[j] - m);
  return true;
}

// a[t] /= c_t (as a[t][j] * (1 / c_t)) for c_t = sum_j a[t][j] (j ascending, the caller's),
// and log Z's terms of t added to log_z; false when c_t is not positive and finite.
__attribute__((always_inline)) inline bool Lattice::rescale(std::size_t t, double c,
                                                            double& log_z) {
  if (!(c > 0.0) || !std::isfinite(c)) return false;
  double* a = &alpha_[t * L_];
  const double inv = 1.0 / c;
  for (std::size_t j = 0; j < L_; ++j) a[j] *= inv;
  scale_[t] = c;
  log_z += state_shift_[t] + std::log(c);
  return true;
}

// Forward step t with shared transitions: S[t], then a[t] (formulas above), log Z's terms of t
// added to log_z. The exponentials of t come first: they do not wait for a[t-1], so they run
// while the chain of multiply-adds of the last step finishes.
template <int W>
__attribute__((always_inline)) inline bool Lattice::forward_step(std::size_t t, double& log_z) {
  const std::size_t L = L_;
  if (!state_exponentials(t)) return false;
  const double* es = &exp_state_[t * L];
  double* a = &alpha_[t * L];
  if (t == 0) {
    std::copy(es, es + L, a);
  } else {
    vector_matrix<W>(&alpha_[(t - 1) * L], exp_trans_padded_.data(), L, L, padded<W>(L), a);
    for (std::size_t j = 0; j < L; ++j) a[j] *= es[j];
    log_z += trans_shift_[0];
  }
  double c = 0.0;
  for (std::size_t j = 0; j < L; ++j) c += a[j];
  return rescale(t, c, log_z);
}

// tmp[j] = S[t+1][j] b[t+1][j] / c_{t+1}, the right factor of backward step t.
__attribute__((always_inline)) inline void Lattice::backward_right(std::size_t t) {
  const double* next = &beta_[(t + 1) * L_];
  const double* s = &exp_state_[(t + 1) * L_];
  const double inv = 1.0 / scale_[t + 1];
  for (std::size_t j = 0; j < L_; ++j) tmp_[j] = s[j] * next[j] * inv;
}

// The node marginals of position t, once b[t] is final.
__attribute__((always_inline)) inline void Lattice::node_marginals_of(std::size_t t) {
  const double* a = &alpha_[t * L_];
  const double* b = &beta_[t * L_];
  double* p = &marginal_[t * L_];
  for (std::size_t j = 0; j < L_; ++j) p[j] = a[j] * b[j];
}

// Backward step t < T - 1 with shared transitions: b[t][i] = sum_j E[i][j] tmp[j] (j
// ascending, over the transposed rows); then the node marginals of t + 1, whose b is final.
template <int W>
__attribute__((always_inline)) inline void Lattice::backward_step(std::size_t t) {
  backward_right(t);
  vector_matrix<W>(tmp_.data(), exp_trans_transposed_.data(), L_, L_, padded<W>(L_),
                   &beta_[t * L_]);
  node_marginals_of(t + 1);
}

void Lattice::size_passes() {
  alpha_.resize(T_ * L_);
  beta_.resize(T_ * L_);
  scale_.resize(T_);
  exp_state_.resize(T_ * L_ + kRowPadding);
  state_shift_.resize(T_);
  marginal_.resize(T_ * L_);
  tmp_.resize(L_);
}

// Scaled forward-backward with shared transitions, W lanes per vector (the same bits for 4 and
// 8: every output keeps its operations and their order).
template <int W>
__attribute__((always_inline)) inline bool Lattice::shared_scaled_lanes() {
  const std::size_t T = T_, L = L_;
  size_passes();
  if (!shared_transition_exponentials<W>()) return false;
  double log_z = 0.0;
  for (std::size_t t = 0; t < T; ++t)
    if (!forward_step<W>(t, log_z)) return false;
  std::fill(&beta_[(T - 1) * L], &beta_[T * L], 1.0);
  for (std::size_t t = T - 1; t-- > 0;) backward_step<W>(t);
  node_marginals_of(0);
  log_z_ = log_z;
  return true;
}

SEPTA_VECTOR_CLONES bool Lattice::shared_scaled() { return shared_scaled_lanes<4>(); }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
__attribute__((target("arch=x86-64-v4"))) bool Lattice::shared_scaled_wide() {
  return shared_scaled_lanes<8>();
}
#else
bool Lattice::shared_scaled_wide() { return shared_scaled_lanes<4>(); }
#endif

/*
 * Two lattices with the same shared transitions, their recursions interleaved: while both are
 * at a step, x's and y's vector-matrix products share the loads of E and run as two
 * independent chains of multiply-adds, and so do their sums c_t (each a chain of additions);
 * a forward step alone is a chain of about L multiply-adds and L additions whose latency the
 * other lattice's step now fills. Each lattice's steps keep their order and operations, so
 * each gets the bits of shared_scaled_lanes. ok_x / ok_y: whether each one's scaled pass held
 * (else it is left to the log-domain pass).
 */
template <int W>
__attribute__((always_inline)) inline void Lattice::shared_pair_lanes(Lattice& x, Lattice& y,
                                                                      bool& ok_x, bool& ok_y) {
  const std::size_t L = x.L_, Lp = padded<W>(L);
  x.size_passes();
  y.size_passes();
  ok_x = x.shared_transition_exponentials<W>();
  ok_y = y.shared_transition_exponentials<W>();
  double zx = 0.0, zy = 0.0;
  std::size_t t = 0;
  for (const std::size_t common = std::min(x.T_, y.T_); t < common && ok_x && ok_y; ++t) {
    ok_x = x.state_exponentials(t);
    ok_y = y.state_exponentials(t);
    if (t == 0 || !ok_x || !ok_y) {  // each alone (its exponentials again: the same values)
      if (ok_x) ok_x = x.forward_step<W>(t, zx);
      if (ok_y) ok_y = y.forward_step<W>(t, zy);
      continue;
    }
    double* ax = &x.alpha_[t * L];
    double* ay = &y.alpha_[t * L];
    vector_matrix_pair<W>(ax - L, ay - L, x.exp_trans_padded_.data(), L, L, Lp, ax, ay);
    const double* sx = &x.exp_state_[t * L];
    const double* sy = &y.exp_state_[t * L];
    for (std::size_t j = 0; j < L; ++j) {
      ax[j] *= sx[j];
      ay[j] *= sy[j];
    }
    zx += x.trans_shift_[0];
    zy += y.trans_shift_[0];
    double cx = 0.0, cy = 0.0;
    for (std::size_t j = 0; j < L; ++j) {
      cx += ax[j];
      cy += ay[j];
    }
    ok_x = x.rescale(t, cx, zx);
    ok_y = y.rescale(t, cy, zy);
  }
  for (std::size_t u = t; ok_x && u < x.T_; ++u) ok_x = x.forward_step<W>(u, zx);
  for (std::size_t u = t; ok_y && u < y.T_; ++u) ok_y = y.forward_step<W>(u, zy);
  // Backward: step k is position T - 2 - k of each.
  const std::size_t bx = ok_x ? x.T_ - 1 : 0, by = ok_y ? y.T_ - 1 : 0;
  if (ok_x) std::fill(&x.beta_[(x.T_ - 1) * L], &x.beta_[x.T_ * L], 1.0);
  if (ok_y) std::fill(&y.beta_[(y.T_ - 1) * L], &y.beta_[y.T_ * L], 1.0);
  std::size_t k = 0;
  for (; k < std::min(bx, by); ++k) {
    const std::size_t tx = x.T_ - 2 - k, ty = y.T_ - 2 - k;
    x.backward_right(tx);
    y.backward_right(ty);
    vector_matrix_pair<W>(x.tmp_.data(), y.tmp_.data(), x.exp_trans_transposed_.data(), L, L,
                          Lp, &x.beta_[tx * L], &y.beta_[ty * L]);
    x.node_marginals_of(tx + 1);
    y.node_marginals_of(ty + 1);
  }
  for (std::size_t u = k; u < bx; ++u) x.backward_step<W>(x.T_ - 2 - u);
  for (std::size_t u = k; u < by; ++u) y.backward_step<W>(y.T_ - 2 - u);
  if (ok_x) {
    x.node_marginals_of(0);
    x.log_z_ = zx;
  }
  if (ok_y) {
    y.node_marginals_of(0);
    y.log_z_ = zy;
  }
}

SEPTA_VECTOR_CLONES void Lattice::shared_pair(Lattice& x, Lattice& y, bool& ok_x, bool& ok_y) {
  shared_pair_lanes<4>(x, y, ok_x, ok_y);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
__attribute__((target("arch=x86-64-v4"))) void Lattice::shared_pair_wide(Lattice& x, Lattice& y,
                                                                         bool& ok_x, bool& ok_y) {
  shared_pair_lanes<8>(x, y, ok_x, ok_y);
}
#else
void Lattice::shared_pair_wide(Lattice& x, Lattice& y, bool& ok_x, bool& ok_y) {
  shared_pair_lanes<4>(x, y, ok_x, ok_y);
}
#endif

std::pair<double, double> Lattice::forward_backward_pair(Lattice& x, Lattice& y) {
  // The same transitions bit for bit: their exponentials are then the same too.
  const bool shared = !x.per_position_ && !y.per_position_ && x.T_ > 0 && y.T_ > 0 &&
                      x.L_ == y.L_ && x.trans_.size() == x.L_ * x.L_ &&
                      y.trans_.size() == x.trans_.size() &&
                      std::memcmp(x.trans_.data(), y.trans_.data(),
                                  sizeof(double) * x.trans_.size()) == 0;
  if (!shared || &x == &y) {
    const double zx = x.forward_backward();
    return {zx, y.forward_backward()};
  }
  bool ok_x, ok_y;
  if (wide_lanes())
    shared_pair_wide(x, y, ok_x, ok_y);
  else
    shared_pair(x, y, ok_x, ok_y);
  x.log_domain_ = !ok_x;
  if (!ok_x) x.forward_backward_log();
  y.log_domain_ = !ok_y;
  if (!ok_y) y.forward_backward_log();
  return {x.log_z_, y.log_z_};
}

// Scaled forward-backward with per-position transitions (each matrix used once: no padded or
// transposed copies).
SEPTA_VECTOR_CLONES bool Lattice::forward_backward_scaled() {
  const std::size_t T = T_, L = L_;
  size_passes();
  for (std::size_t t = 0; t < T; ++t) {
    const double* s = &state_[t * L];
    double m, lowest;
    extremes(s, L, m, lowest);
    if (m - lowest > kMaxSpan) return false;
    state_shift_[t] = m;
    for (std::size_t j = 0; j < L; ++j) exp_state_[t * L + j] = fast_exp(s[j] - m);
  }
  const std::size_t matrices = trans_.size() / (L * L);
  exp_trans_.resize(trans_.size());
  trans_shift_.resize(matrices);
  for (std::size_t k = 0; k < matrices; ++k) {
    const double* __restrict w = &trans_[k * L * L];
    double n, lowest;
    extremes(w, L * L, n, lowest);
    if (n - lowest > kMaxSpan) return false;
    trans_shift_[k] = n;
    double* __restrict e = &exp_trans_[k * L * L];
    for (std::size_t r = 0; r < L * L; ++r) e[r] = fast_exp(w[r] - n);
  }

  double log_z = 0.0;
  for (std::size_t t = 0; t < T; ++t) {
    double* a = &alpha_[t * L];
    const double* s = &exp_state_[t * L];
    if (t == 0) {
      std::copy(s, s + L, a);
    } else {
      const double* prev = &alpha_[(t - 1) * L];
      const double* e = &exp_trans_[(t - 1) * L * L];
      std::fill(a, a + L, 0.0);
      for (std::size_t i = 0; i < L; ++i) {
        const double p = prev[i];
        const double* row = &e[i * L];
        for (std::size_t j = 0; j < L; ++j) a[j] += p * row[j];
      }
      for (std::size_t j = 0; j < L; ++j) a[j] *= s[j];
      log_z += trans_shift_[t - 1];
    }
    double c = 0.0;
    for (std::size_t j = 0; j < L; ++j) c += a[j];
    if (!rescale(t, c, log_z)) return false;
  }

  std::fill(&beta_[(T - 1) * L], &beta_[T * L], 1.0);
  double* tmp = tmp_.data();
  for (std::size_t t = T - 1; t-- > 0;) {
    const double* next = &beta_[(t + 1) * L];
    const double* s = &exp_state_[(t + 1) * L];
    const double inv = 1.0 / scale_[t + 1];
    for (std::size_t j = 0; j < L; ++j) tmp[j] = s[j] * next[j] * inv;
    double* b = &beta_[t * L];
    // b[i] = sum_j E_{t+1}[i][j] tmp[j]: one dot product per row, in four independent
    // partial sums (a fixed order, so the result does not depend on the machine).
    const double* e = &exp_trans_[t * L * L];
    for (std::size_t i = 0; i < L; ++i) {
      const double* row = &e[i * L];
      double part[4] = {0.0, 0.0, 0.0, 0.0};
      std::size_t j = 0;
      for (; j + 4 <= L; j += 4)
        for (std::size_t k = 0; k < 4; ++k) part[k] += row[j + k] * tmp[j + k];
      for (; j < L; ++j) part[0] += row[j] * tmp[j];
      b[i] = (part[0] + part[1]) + (part[2] + part[3]);
    }
  }

  for (std::size_t q = 0; q < T * L; ++q) marginal_[q] = alpha_[q] * beta_[q];
  log_z_ = log_z;
  return true;
}

/*
 * Log-domain forward-backward (slower, exact for any finite potentials):
 *   la[0][j] = state[0][j];  la[t][j] = state[t][j] + logsumexp_i(la[t-1][i] + trans_t[i][j])
 *   lb[T-1][i] = 0;  lb[t][i] = logsumexp_j(trans_{t+1}[i][j] + state[t+1][j] + lb[t+1][j])
 *   log Z = logsumexp_j la[T-1][j];  P(y_t=j) = exp(la[t][j] + lb[t][j] - log Z)
 */
void Lattice::forward_backward_log() {
  const std::size_t T = T_, L = L_;
  const Lattice& self = *this;  // const access keeps the shared exponentials cached
  std::vector<double> terms(L);
  auto log_sum_exp = [&]() {
    const double m = *std::max_element(terms.begin(), terms.end());
    if (!std::isfinite(m)) return m;
    double sum = 0.0;
    for (double v : terms) sum += std::exp(v - m);
    return m + std::log(sum);
  };
  for (std::size_t j = 0; j < L; ++j) alpha_[j] = state_[j];
  for (std::size_t t = 1; t < T; ++t) {
    const double* w = self.transition(t);
    for (std::size_t j = 0; j < L; ++j) {
      for (std::size_t i = 0; i < L; ++i) terms[i] = alpha_[(t - 1) * L + i] + w[i * L + j];
      alpha_[t * L + j] = state_[t * L + j] + log_sum_exp();
    }
  }
  for (std::size_t i = 0; i < L; ++i) beta_[(T - 1) * L + i] = 0.0;
  for (std::size_t t = T - 1; t-- > 0;) {
    const double* w = self.transition(t + 1);
    for (std::size_t i = 0; i < L; ++i) {
      for (std::size_t j = 0; j < L; ++j)
        terms[j] = w[i * L + j] + state_[(t + 1) * L + j] + beta_[(t + 1) * L + j];
      beta_[t * L + i] = log_sum_exp();
    }
  }
  for (std::size_t j = 0; j < L; ++j) terms[j] = alpha_[(T - 1) * L + j];
  log_z_ = log_sum_exp();
  if (!std::isfinite(log_z_))
    throw NumericalError("lattice: log partition is not finite (non-finite potentials?)");
  marginal_.resize(T * L);
  for (std::size_t q = 0; q < T * L; ++q) marginal_[q] = std::exp(alpha_[q] + beta_[q] - log_z_);
}

}  // namespace septa::crf
