#include "crf/lattice/lattice.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "crf/lattice/fast_exp.h"
#include "septa/error.h"

namespace septa::crf {

namespace {

typedef double Vec4 __attribute__((vector_size(32)));  // 4 lanes (AVX2, or 2 x SSE2)

inline std::size_t padded(std::size_t L) { return (L + 3) & ~std::size_t{3}; }

// acc[k] += x[i] * m[i][4k .. 4k+3] for i < rows, k < K (m: rows of stride Lp).
template <int K>
__attribute__((always_inline)) inline void accumulate_rows(const double* x, const double* m,
                                                           std::size_t rows, std::size_t Lp,
                                                           Vec4* acc) {
  for (std::size_t i = 0; i < rows; ++i, m += Lp) {
    const Vec4 p = {x[i], x[i], x[i], x[i]};
    for (int k = 0; k < K; ++k) {
      Vec4 row;
      std::memcpy(&row, m + 4 * k, sizeof row);
      acc[k] += p * row;
    }
  }
}

/*
 * out[j] = sum_i x[i] M[i][j] for j < L, i < rows, M [rows][Lp] with rows padded by zeros to
 * Lp (L rounded up to 4). Up to 32 outputs at a time stay in registers while i runs over the
 * rows, each summed in i order (out[j] = (((0 + x_0 M_0j) + x_1 M_1j) + ...), one multiply-add
 * per term), so the bits are those of the plain loop `for i: for j: out[j] += x[i] * M[i][j]`
 * compiled for the same target. The plain loop kept out[] in memory, and every row waited for
 * the stores of the last. Each 4 outputs are one chain of multiply-adds, each waiting for the
 * last (4 cycles): 8 chains side by side (L = 23: 6 in one pass instead of 4, then 2) keep
 * more multiply-adds in flight.
 */
__attribute__((always_inline)) inline void vector_matrix(const double* x, const double* M,
                                                         std::size_t rows, std::size_t L,
                                                         std::size_t Lp, double* out) {
  for (std::size_t j0 = 0; j0 < Lp; j0 += 32) {
    Vec4 acc[8] = {};
    const double* m = M + j0;
    switch (std::min<std::size_t>(32, Lp - j0) / 4) {
      case 8: accumulate_rows<8>(x, m, rows, Lp, acc); break;
      case 7: accumulate_rows<7>(x, m, rows, Lp, acc); break;
      case 6: accumulate_rows<6>(x, m, rows, Lp, acc); break;
      case 5: accumulate_rows<5>(x, m, rows, Lp, acc); break;
      case 4: accumulate_rows<4>(x, m, rows, Lp, acc); break;
      case 3: accumulate_rows<3>(x, m, rows, Lp, acc); break;
      case 2: accumulate_rows<2>(x, m, rows, Lp, acc); break;
      default: accumulate_rows<1>(x, m, rows, Lp, acc); break;
    }
    double lanes[32];
    std::memcpy(lanes, acc, sizeof lanes);
    std::copy(lanes, lanes + std::min<std::size_t>(32, L - j0), out + j0);
  }
}

}  // namespace

void Lattice::reset(std::size_t T, std::size_t L, bool per_position_transitions) {
  const bool keep_shared = !per_position_transitions && !per_position_ && L == L_ &&
                           trans_.size() == L * L;
  T_ = T;
  L_ = L;
  per_position_ = per_position_transitions;
  state_.assign(T * L, 0.0);
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
  state_.resize(T * L);
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
  log_domain_ = !forward_backward_scaled();
  if (log_domain_) forward_backward_log();
  return log_z_;
}

// Returns false, leaving the work to the log-domain pass, when the potentials of one position
// span more than kMaxSpan nats: exp() of the shifted values could then underflow and silently
// drop the dominant paths (scaled forward-backward is exact only while nothing underflows).
SEPTA_VECTOR_CLONES bool Lattice::forward_backward_scaled() {
  constexpr double kMaxSpan = 200.0;
  const std::size_t T = T_, L = L_;
  alpha_.resize(T * L);
  beta_.resize(T * L);
  scale_.resize(T);
  exp_state_.resize(T * L);
  state_shift_.resize(T);
  for (std::size_t t = 0; t < T; ++t) {
    const double* s = &state_[t * L];
    // Extremes in four lanes (branch-free, so the loop vectorises); max and min are exact, so
    // any order gives the same values (a tie of +0 and -0 shifts by either: s - m and the
    // exponentials keep their bits, fast_exp(+-0) = 1).
    double high[4], low[4];
    for (std::size_t lane = 0; lane < 4; ++lane) high[lane] = low[lane] = s[0];
    std::size_t j = 0;
    for (; j + 4 <= L; j += 4)
      for (std::size_t lane = 0; lane < 4; ++lane) {
        high[lane] = s[j + lane] > high[lane] ? s[j + lane] : high[lane];
        low[lane] = s[j + lane] < low[lane] ? s[j + lane] : low[lane];
      }
    for (; j < L; ++j) {
      high[0] = s[j] > high[0] ? s[j] : high[0];
      low[0] = s[j] < low[0] ? s[j] : low[0];
    }
    const double m = std::max(std::max(high[0], high[1]), std::max(high[2], high[3]));
    const double lowest = std::min(std::min(low[0], low[1]), std::min(low[2], low[3]));
    if (m - lowest > kMaxSpan) return false;
    state_shift_[t] = m;
    for (std::size_t j = 0; j < L; ++j) exp_state_[t * L + j] = fast_exp(s[j] - m);
  }
  const std::size_t matrices = trans_.size() / (L * L);
  if (exp_trans_stale_ || per_position_) {
    exp_trans_.resize(trans_.size());
    // The shared matrix is also kept transposed (the backward pass then runs as axpy over
    // contiguous columns); per-position matrices are used once each, so the backward pass
    // reads their rows instead of paying for a transposed copy.
    if (!per_position_) {
      exp_trans_padded_.assign(L * padded(L), 0.0);
      exp_trans_transposed_.assign(L * padded(L), 0.0);
    }
    trans_shift_.resize(matrices);
  }
  for (std::size_t k = 0; k < matrices && (exp_trans_stale_ || per_position_); ++k) {
    const double* __restrict w = &trans_[k * L * L];
    // Extremes in four lanes (branch-free, so the loop vectorises).
    double high[4], low[4];
    for (std::size_t lane = 0; lane < 4; ++lane) high[lane] = low[lane] = w[0];
    std::size_t q = 0;
    for (; q + 4 <= L * L; q += 4)
      for (std::size_t lane = 0; lane < 4; ++lane) {
        high[lane] = w[q + lane] > high[lane] ? w[q + lane] : high[lane];
        low[lane] = w[q + lane] < low[lane] ? w[q + lane] : low[lane];
      }
    for (; q < L * L; ++q) {
      high[0] = std::max(high[0], w[q]);
      low[0] = std::min(low[0], w[q]);
    }
    const double n = std::max(std::max(high[0], high[1]), std::max(high[2], high[3]));
    const double lowest = std::min(std::min(low[0], low[1]), std::min(low[2], low[3]));
    if (n - lowest > kMaxSpan) {
      exp_trans_stale_ = true;
      return false;
    }
    trans_shift_[k] = n;
    double* __restrict e = &exp_trans_[k * L * L];
    for (std::size_t r = 0; r < L * L; ++r) e[r] = fast_exp(w[r] - n);
    if (per_position_) continue;
    const std::size_t Lp = padded(L);
    for (std::size_t i = 0; i < L; ++i)
      for (std::size_t j = 0; j < L; ++j) {
        exp_trans_padded_[i * Lp + j] = e[i * L + j];
        exp_trans_transposed_[j * Lp + i] = e[i * L + j];
      }
  }
  exp_trans_stale_ = false;
  auto exp_trans_at = [&](std::size_t t) {
    return &exp_trans_[per_position_ ? (t - 1) * L * L : 0];
  };

  double log_z = 0.0;
  for (std::size_t t = 0; t < T; ++t) {
    double* a = &alpha_[t * L];
    const double* s = &exp_state_[t * L];
    if (t == 0) {
      std::copy(s, s + L, a);
    } else {
      const double* prev = &alpha_[(t - 1) * L];
      if (per_position_) {
        const double* e = exp_trans_at(t);
        std::fill(a, a + L, 0.0);
        for (std::size_t i = 0; i < L; ++i) {
          const double p = prev[i];
          const double* row = &e[i * L];
          for (std::size_t j = 0; j < L; ++j) a[j] += p * row[j];
        }
      } else {
        vector_matrix(prev, exp_trans_padded_.data(), L, L, padded(L), a);
      }
      for (std::size_t j = 0; j < L; ++j) a[j] *= s[j];
      log_z += trans_shift_[per_position_ ? t - 1 : 0];
    }
    double c = 0.0;
    for (std::size_t j = 0; j < L; ++j) c += a[j];
    if (!(c > 0.0) || !std::isfinite(c)) return false;
    const double inv = 1.0 / c;
    for (std::size_t j = 0; j < L; ++j) a[j] *= inv;
    scale_[t] = c;
    log_z += state_shift_[t] + std::log(c);
  }

  std::fill(&beta_[(T - 1) * L], &beta_[T * L], 1.0);
  tmp_.resize(L);
  double* tmp = tmp_.data();
  for (std::size_t t = T - 1; t-- > 0;) {
    const double* next = &beta_[(t + 1) * L];
    const double* s = &exp_state_[(t + 1) * L];
    const double inv = 1.0 / scale_[t + 1];
    for (std::size_t j = 0; j < L; ++j) tmp[j] = s[j] * next[j] * inv;
    double* b = &beta_[t * L];
    if (per_position_) {
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
      continue;
    }
    // b[i] = sum_j E[i][j] tmp[j] = sum_j tmp[j] E^T[j][i], j ascending.
    vector_matrix(tmp, exp_trans_transposed_.data(), L, L, padded(L), b);
  }

  marginal_.resize(T * L);
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

void Lattice::add_edge_marginals(std::size_t t, double scale, double* out) const {
  const std::size_t L = L_;
  if (log_domain_) {
    const double* w = transition(t);
    for (std::size_t i = 0; i < L; ++i)
      for (std::size_t j = 0; j < L; ++j)
        out[i * L + j] += scale * std::exp(alpha_[(t - 1) * L + i] + w[i * L + j] +
                                           state_[t * L + j] + beta_[t * L + j] - log_z_);
    return;
  }
  const double* prev = &alpha_[(t - 1) * L];
  const double* s = &exp_state_[t * L];
  const double* b = &beta_[t * L];
  const double* e = &exp_trans_[per_position_ ? (t - 1) * L * L : 0];
  const double factor = scale / scale_[t];
  // Reuse a small stack-friendly buffer for S[t][j] b[t][j] / c_t.
  double sb[64];
  std::vector<double> heap;
  double* right = sb;
  if (L > 64) {
    heap.resize(L);
    right = heap.data();
  }
  for (std::size_t j = 0; j < L; ++j) right[j] = s[j] * b[j] * factor;
  for (std::size_t i = 0; i < L; ++i) {
    const double p = prev[i];
    const double* row = &e[i * L];
    double* o = &out[i * L];
    for (std::size_t j = 0; j < L; ++j) o[j] += p * row[j] * right[j];
  }
}

/*
 * With shared transitions the edge marginals summed over positions factor as
 *   sum_t P(y_{t-1}=i, y_t=j) = E[i][j] * sum_t a[t-1][i] (S[t][j] b[t][j] / c_t),
 * so one outer-product accumulation per position and one multiply by E per sequence suffice.
 */
SEPTA_VECTOR_CLONES void Lattice::add_edge_marginal_sums(double scale, double* out) {
  const std::size_t L = L_;
  if (per_position_ || log_domain_) {
    for (std::size_t t = 1; t < T_; ++t) add_edge_marginals(t, scale, out);
    return;
  }
  // r [T][Lp]: r[t][j] = S[t][j] b[t][j] / c_t (rows padded by zeros); then each row i of the
  // sum, m[i][j] = sum_{t>=1} a[t-1][i] r[t][j] in t order, is vector_matrix over the column
  // a[.][i] (the same multiply-adds in the same order as accumulating m position by position).
  const std::size_t Lp = padded(L), T = T_;
  // Every entry read below is written first (the sums, the columns, r with its padding), so
  // the scratch is not cleared per sequence.
  edge_sum_.resize(L * L + T * Lp + T);
  double* r = &edge_sum_[L * L];
  double* column = r + T * Lp;  // [T-1] a[t-1][i] of one i
  for (std::size_t t = 1; t < T; ++t) {
    const double* s = &exp_state_[t * L];
    const double* b = &beta_[t * L];
    const double inv = 1.0 / scale_[t];
    for (std::size_t j = 0; j < L; ++j) r[(t - 1) * Lp + j] = s[j] * b[j] * inv;
    for (std::size_t j = L; j < Lp; ++j) r[(t - 1) * Lp + j] = 0.0;
  }
  for (std::size_t i = 0; i < L; ++i) {
    for (std::size_t t = 1; t < T; ++t) column[t - 1] = alpha_[(t - 1) * L + i];
    vector_matrix(column, r, T - 1, L, Lp, &edge_sum_[i * L]);
  }
  for (std::size_t q = 0; q < L * L; ++q) out[q] += scale * edge_sum_[q] * exp_trans_[q];
}

double Lattice::path_score(const int* labels) const {
  double score = 0.0;
  for (std::size_t t = 0; t < T_; ++t) {
    score += state_[t * L_ + labels[t]];
    if (t > 0) score += transition(t)[labels[t - 1] * L_ + labels[t]];
  }
  return score;
}

/*
 * Viterbi (log domain): d[0][j] = state[0][j];
 *   d[t][j] = state[t][j] + max_i (d[t-1][i] + trans_t[i][j]),  back[t][j] = argmax_i
 * then follow back-pointers from argmax_j d[T-1][j].
 */
SEPTA_VECTOR_CLONES double Lattice::viterbi(int* labels_out) const {
  const std::size_t T = T_, L = L_;
  if (T == 0) return 0.0;
  thread_local std::vector<double> delta;  // [T][L] best score ending in (t, j)
  thread_local std::vector<int> back;      // [T][L] its previous label
  if (delta.size() < T * L) {
    delta.resize(T * L);
    back.resize(T * L);
  }
  std::copy(&state_[0], &state_[L], &delta[0]);
  // delta_t(j) = state_t(j) + max_i (delta_{t-1}(i) + w_t(i, j)), ties to the lowest i. Blocks
  // of 4 current labels j keep their running max and argmax in registers while the previous
  // labels i run in ascending order (the same comparisons, in the same order, as one label at a
  // time); the argmax is held as doubles so that every lane of the compare-and-select is 64
  // bits wide. The last L mod 4 labels go one at a time.
  typedef long Mask4 __attribute__((vector_size(32)));
  const std::size_t blocked = L & ~std::size_t{3};
  for (std::size_t t = 1; t < T; ++t) {
    const double* __restrict prev = &delta[(t - 1) * L];
    const double* __restrict w = transition(t);
    double* __restrict best = &delta[t * L];
    int* __restrict arg = &back[t * L];
    const double* state = &state_[t * L];
    for (std::size_t j = 0; j < blocked; j += 4) {
      Vec4 b, row;
      std::memcpy(&b, w + j, sizeof b);
      b += prev[0];
      Vec4 a = {0.0, 0.0, 0.0, 0.0};
      for (std::size_t i = 1; i < L; ++i) {
        std::memcpy(&row, w + i * L + j, sizeof row);
        const Vec4 v = row + prev[i];
        const Mask4 better = v > b;
        const double label = static_cast<double>(i);
        b = better ? v : b;
        a = better ? Vec4{label, label, label, label} : a;
      }
      Vec4 s;
      std::memcpy(&s, state + j, sizeof s);
      b += s;
      std::memcpy(best + j, &b, sizeof b);
      for (int k = 0; k < 4; ++k) arg[j + k] = static_cast<int>(a[k]);
    }
    for (std::size_t j = blocked; j < L; ++j) {
      double b = prev[0] + w[j];
      int a = 0;
      for (std::size_t i = 1; i < L; ++i) {
        const double v = prev[i] + w[i * L + j];
        if (v > b) {
          b = v;
          a = static_cast<int>(i);
        }
      }
      best[j] = b + state[j];
      arg[j] = a;
    }
  }
  const double* last = &delta[(T - 1) * L];
  int arg = static_cast<int>(std::max_element(last, last + L) - last);
  const double best = last[arg];
  for (std::size_t t = T; t-- > 0;) {
    labels_out[t] = arg;
    if (t > 0) arg = back[t * L + arg];
  }
  return best;
}

}  // namespace septa::crf
