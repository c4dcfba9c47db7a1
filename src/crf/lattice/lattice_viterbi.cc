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
