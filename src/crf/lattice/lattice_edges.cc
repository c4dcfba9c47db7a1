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
template <int W>
__attribute__((always_inline)) inline void Lattice::shared_edge_sums(double scale, double* out) {
  const std::size_t L = L_;
  // r [T][Lp]: r[t][j] = S[t][j] b[t][j] / c_t (rows padded by zeros); then the sum
  // m[i][j] = sum_{t>=1} a[t-1][i] r[t][j] in t order (outer_sums: the same multiply-adds in
  // the same order as accumulating m position by position).
  const std::size_t Lp = padded<W>(L), T = T_;
  // Every entry read below is written first (the sums, r with its padding), so the scratch is
  // not cleared per sequence.
  edge_sum_.resize(L * L + T * Lp);
  double* r = &edge_sum_[L * L];
  for (std::size_t t = 1; t < T; ++t) {
    const double* s = &exp_state_[t * L];
    const double* b = &beta_[t * L];
    const double inv = 1.0 / scale_[t];
    for (std::size_t j = 0; j < L; ++j) r[(t - 1) * Lp + j] = s[j] * b[j] * inv;
    for (std::size_t j = L; j < Lp; ++j) r[(t - 1) * Lp + j] = 0.0;
  }
  outer_sums<W>(alpha_.data(), r, T - 1, L, Lp, edge_sum_.data());
  for (std::size_t q = 0; q < L * L; ++q) out[q] += scale * edge_sum_[q] * exp_trans_[q];
}

SEPTA_VECTOR_CLONES void Lattice::shared_edge_sums_narrow(double scale, double* out) {
  shared_edge_sums<4>(scale, out);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
__attribute__((target("arch=x86-64-v4"))) void Lattice::shared_edge_sums_wide(double scale,
                                                                              double* out) {
  shared_edge_sums<8>(scale, out);
}
#else
void Lattice::shared_edge_sums_wide(double scale, double* out) { shared_edge_sums<4>(scale, out); }
#endif

void Lattice::add_edge_marginal_sums(double scale, double* out) {
  if (per_position_ || log_domain_) {
    for (std::size_t t = 1; t < T_; ++t) add_edge_marginals(t, scale, out);
    return;
  }
  if (wide_lanes())
    shared_edge_sums_wide(scale, out);
  else
    shared_edge_sums_narrow(scale, out);
}

}  // namespace septa::crf
