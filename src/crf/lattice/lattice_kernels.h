// The vector kernels of the lattice's passes (private to src/crf/lattice): matrix-vector
// products and outer-product sums in W lanes (4: AVX2 or 2 x SSE2; 8: AVX-512), with every
// output keeping its operations and their order for any W, so all widths give the same bits.
#ifndef SEPTA_CRF_LATTICE_LATTICE_KERNELS_H
#define SEPTA_CRF_LATTICE_LATTICE_KERNELS_H

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace septa::crf::lattice_kernels {


typedef double Vec4 __attribute__((vector_size(32)));  // 4 lanes (AVX2, or 2 x SSE2)
typedef double Vec8 __attribute__((vector_size(64)));  // 8 lanes (AVX-512)
template <int W> struct Lanes;
template <> struct Lanes<4> { typedef Vec4 V; };
template <> struct Lanes<8> { typedef Vec8 V; };

// L rounded up to a multiple of W (the rows of the matrices vector_matrix reads).
template <int W = 4>
inline std::size_t padded(std::size_t L) { return (L + W - 1) & ~std::size_t{W - 1}; }

// Elements past the last row of the state potentials and their exponentials
// (state_exponentials computes whole vectors of 8).
constexpr std::size_t kRowPadding = 8;

// Whether the processor runs the 8-lane (AVX-512) kernels.
inline bool wide_lanes() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

// out[0 .. count) = the first count lanes of acc[0 .. K) (count <= K W): whole vectors stored
// as they are, the lanes of a last partial one one by one.
template <int K, int W>
__attribute__((always_inline)) inline void store_lanes(const typename Lanes<W>::V* acc,
                                                       std::size_t count, double* out) {
  int k = 0;
  for (; k < K && static_cast<std::size_t>(W * (k + 1)) <= count; ++k)
    std::memcpy(out + W * k, &acc[k], sizeof acc[k]);
  if (k < K)
    for (std::size_t l = 0; W * k + l < count; ++l) out[W * k + l] = acc[k][l];
}

// acc[k] += x[i] * m[i][W k .. W k + W - 1] for i < rows, k < K (m: rows of stride Lp).
template <int K, int W>
__attribute__((always_inline)) inline void accumulate_rows(const double* x, const double* m,
                                                           std::size_t rows, std::size_t Lp,
                                                           typename Lanes<W>::V* acc) {
  typedef typename Lanes<W>::V V;
  for (std::size_t i = 0; i < rows; ++i, m += Lp) {
    const V p = x[i] - V{};  // x[i] in every lane (v - +0 is v, -0 too)
    for (int k = 0; k < K; ++k) {
      V row;
      std::memcpy(&row, m + W * k, sizeof row);
      acc[k] += p * row;
    }
  }
}

// accumulate_rows into K fresh registers, then their first `count` lanes to out.
template <int K, int W>
__attribute__((always_inline)) inline void rows_to(const double* x, const double* m,
                                                   std::size_t rows, std::size_t Lp,
                                                   std::size_t count, double* out) {
  typename Lanes<W>::V acc[K] = {};
  accumulate_rows<K, W>(x, m, rows, Lp, acc);
  store_lanes<K, W>(acc, count, out);
}

/*
 * out[j] = sum_i x[i] M[i][j] for j < L, i < rows, M [rows][Lp] with rows padded by zeros to
 * Lp (L rounded up to W lanes). Up to 8 W outputs at a time stay in registers while i runs
 * over the rows, each summed in i order (out[j] = (((0 + x_0 M_0j) + x_1 M_1j) + ...), one
 * multiply-add per term), so the bits are those of the plain loop
 * `for i: for j: out[j] += x[i] * M[i][j]` compiled for the same target, whatever W. The plain
 * loop kept out[] in memory, and every row waited for the stores of the last. Each W outputs
 * are one chain of multiply-adds, each waiting for the last (4 cycles): 8 chains side by side
 * keep more multiply-adds in flight.
 */
template <int W>
__attribute__((always_inline)) inline void vector_matrix(const double* x, const double* M,
                                                         std::size_t rows, std::size_t L,
                                                         std::size_t Lp, double* out) {
  for (std::size_t j0 = 0; j0 < Lp; j0 += 8 * W) {
    const double* m = M + j0;
    const std::size_t count = std::min<std::size_t>(8 * W, L - j0);
    switch (std::min<std::size_t>(8 * W, Lp - j0) / W) {
      case 8: rows_to<8, W>(x, m, rows, Lp, count, out + j0); break;
      case 7: rows_to<7, W>(x, m, rows, Lp, count, out + j0); break;
      case 6: rows_to<6, W>(x, m, rows, Lp, count, out + j0); break;
      case 5: rows_to<5, W>(x, m, rows, Lp, count, out + j0); break;
      case 4: rows_to<4, W>(x, m, rows, Lp, count, out + j0); break;
      case 3: rows_to<3, W>(x, m, rows, Lp, count, out + j0); break;
      case 2: rows_to<2, W>(x, m, rows, Lp, count, out + j0); break;
      default: rows_to<1, W>(x, m, rows, Lp, count, out + j0); break;
    }
  }
}

// vector_matrix of two vectors x1, x2 over the same M at once, K vectors of W outputs each: one
// load of each row of M for both, and two independent chains per output vector.
template <int K, int W>
__attribute__((always_inline)) inline void rows_to_pair(const double* x1, const double* x2,
                                                        const double* m, std::size_t rows,
                                                        std::size_t Lp, std::size_t count,
                                                        double* out1, double* out2) {
  typedef typename Lanes<W>::V V;
  V acc1[K] = {}, acc2[K] = {};
  for (std::size_t i = 0; i < rows; ++i, m += Lp) {
    const V p1 = x1[i] - V{}, p2 = x2[i] - V{};
    for (int k = 0; k < K; ++k) {
      V row;
      std::memcpy(&row, m + W * k, sizeof row);
      acc1[k] += p1 * row;
      acc2[k] += p2 * row;
    }
  }
  store_lanes<K, W>(acc1, count, out1);
  store_lanes<K, W>(acc2, count, out2);
}

// out1 = x1 M and out2 = x2 M as vector_matrix computes each (the same bits), 4 W outputs of
// both at a time.
template <int W>
__attribute__((always_inline)) inline void vector_matrix_pair(const double* x1, const double* x2,
                                                              const double* M, std::size_t rows,
                                                              std::size_t L, std::size_t Lp,
                                                              double* out1, double* out2) {
  for (std::size_t j0 = 0; j0 < Lp; j0 += 4 * W) {
    const double* m = M + j0;
    const std::size_t count = std::min<std::size_t>(4 * W, L - j0);
    switch (std::min<std::size_t>(4 * W, Lp - j0) / W) {
      case 4: rows_to_pair<4, W>(x1, x2, m, rows, Lp, count, out1 + j0, out2 + j0); break;
      case 3: rows_to_pair<3, W>(x1, x2, m, rows, Lp, count, out1 + j0, out2 + j0); break;
      case 2: rows_to_pair<2, W>(x1, x2, m, rows, Lp, count, out1 + j0, out2 + j0); break;
      default: rows_to_pair<1, W>(x1, x2, m, rows, Lp, count, out1 + j0, out2 + j0); break;
    }
  }
}

/*
 * m[i][j] = sum_t x[t][i] r[t][j] for i < L, j < L, t < rows (x [rows][L], r [rows][Lp] with
 * rows padded by zeros), each output summed in t order with one multiply-add per term: the bits
 * of vector_matrix over the column x[.][i]. Blocks of R rows i by KJ vectors of W outputs j stay
 * in registers while t runs (R KJ independent chains), x read along its rows; the rows i of a
 * last partial block repeat row L - 1 and are not stored.
 */
template <int R, int KJ, int W>
__attribute__((always_inline)) inline void outer_block(const double* x, const double* r,
                                                       std::size_t rows, std::size_t L,
                                                       std::size_t Lp, std::size_t i0,
                                                       std::size_t j0, double* m) {
  typedef typename Lanes<W>::V V;
  V acc[R][KJ] = {};
  std::size_t col[R];
  for (int q = 0; q < R; ++q) col[q] = std::min(i0 + q, L - 1);
  for (std::size_t t = 0; t < rows; ++t, x += L, r += Lp) {
    V row[KJ];
    for (int k = 0; k < KJ; ++k) std::memcpy(&row[k], r + j0 + W * k, sizeof(V));
    for (int q = 0; q < R; ++q) {
      const V p = x[col[q]] - V{};
      for (int k = 0; k < KJ; ++k) acc[q][k] += p * row[k];
    }
  }
  const std::size_t count = std::min<std::size_t>(KJ * W, L - j0);
  for (int q = 0; q < R && i0 + q < L; ++q) store_lanes<KJ, W>(acc[q], count, m + (i0 + q) * L + j0);
}

// outer_block over all of m [L][L]: R rows (8 for 8 lanes, 4 for 4) by up to 3 vectors.
template <int W>
__attribute__((always_inline)) inline void outer_sums(const double* x, const double* r,
                                                      std::size_t rows, std::size_t L,
                                                      std::size_t Lp, double* m) {
  constexpr int R = W == 8 ? 8 : 4;
  for (std::size_t j0 = 0; j0 < Lp; j0 += 3 * W) {
    const std::size_t vectors = std::min<std::size_t>(3, (Lp - j0) / W);
    for (std::size_t i0 = 0; i0 < L; i0 += R) {
      if (vectors == 3)
        outer_block<R, 3, W>(x, r, rows, L, Lp, i0, j0, m);
      else if (vectors == 2)
        outer_block<R, 2, W>(x, r, rows, L, Lp, i0, j0, m);
      else
        outer_block<R, 1, W>(x, r, rows, L, Lp, i0, j0, m);
    }
  }
}

// The extremes of s[0..n) (a position's states, a transition matrix) in four branch-free lanes
// (so the loop vectorises); max and min are exact, so any order gives the same values (a tie of +0 and -0 gives either: s - m and the
// exponentials keep their bits, fast_exp(+-0) = 1).
__attribute__((always_inline)) inline void extremes(const double* s, std::size_t n,
                                                    double& highest, double& lowest) {
  double high[4], low[4];
  for (std::size_t lane = 0; lane < 4; ++lane) high[lane] = low[lane] = s[0];
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4)
    for (std::size_t lane = 0; lane < 4; ++lane) {
      high[lane] = s[j + lane] > high[lane] ? s[j + lane] : high[lane];
      low[lane] = s[j + lane] < low[lane] ? s[j + lane] : low[lane];
    }
  for (; j < n; ++j) {
    high[0] = s[j] > high[0] ? s[j] : high[0];
    low[0] = s[j] < low[0] ? s[j] : low[0];
  }
  highest = std::max(std::max(high[0], high[1]), std::max(high[2], high[3]));
  lowest = std::min(std::min(low[0], low[1]), std::min(low[2], low[3]));
}

// Potentials of one position (or matrix) may span at most this many nats for the scaled
// forward-backward (see forward_backward_scaled).
constexpr double kMaxSpan = 200.0;

}  // namespace septa::crf::lattice_kernels

#endif  // SEPTA_CRF_LATTICE_LATTICE_KERNELS_H
