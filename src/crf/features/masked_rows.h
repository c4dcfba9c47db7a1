// An attribute's row of (attribute, class) features as its first feature and a mask of its
// classes (K <= 32; WideMaskedRange: K <= 64): on AVX-512 a row's weights go into the lanes of its classes in one
// masked expand-load, and class values into the row's feature order in one compress, with
// no loop over the row and no read of its classes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SEPTA_MASKED_ROWS 1
#define SEPTA_AVX512 __attribute__((target("avx512f,popcnt")))
#endif

#include "crf/features/bit_count.h"
#include "crf/features/sparse_features.h"

namespace septa::crf {

// The features of one attribute: first, first + 1, ... in the order of the set bits of mask
// (bit c: class c; the classes of a row increase).
struct MaskedRange {
  uint32_t first, mask;
  uint32_t last() const { return first + bit_count(mask); }
};

// A MaskedRange of 33..64 classes: mask bits 0-31 in low, 32-63 in high (12 bytes, not 16).
struct WideMaskedRange {
  uint32_t first, low, high;
  uint64_t mask() const { return uint64_t{high} << 32 | low; }
};

inline uint32_t row_mask(const MaskedRange& r) { return r.mask; }
inline uint64_t row_mask(const WideMaskedRange& r) { return r.mask(); }

// Whether the processor runs the AVX-512 kernels below (false where they are not compiled).
bool have_avx512();

// [attributes] the class mask of each attribute's features, or empty when some attribute's
// classes do not increase (or K > 32).
std::vector<uint32_t> attribute_masks(const SparseFeatures& features, std::size_t K,
                                      std::size_t attributes);
// attribute_masks for 32 < K <= 64 (empty otherwise or when some attribute's classes do not
// increase).
std::vector<uint64_t> wide_attribute_masks(const SparseFeatures& features, std::size_t K,
                                           std::size_t attributes);

// f(std::integral_constant<int, C>{}) for the C registers of 8 lanes that L labels take,
// clamped to [Lo, Hi]: the masked kernels are templates over C.
template <int Lo, int Hi, typename F>
inline void with_registers(std::size_t L, F&& f) {
  if constexpr (Lo == Hi)
    f(std::integral_constant<int, Lo>{});
  else if ((L + 7) / 8 <= Lo)
    f(std::integral_constant<int, Lo>{});
  else
    with_registers<Lo + 1, Hi>(L, std::forward<F>(f));
}

#ifdef SEPTA_MASKED_ROWS
// The set bits of mask below bit 8j (the row's features of classes < 8j), 0 <= j < 8 * sizeof.
template <typename Mask>
SEPTA_AVX512 __attribute__((always_inline)) inline int bits_before(Mask mask, int j) {
  if (j == 0) return 0;
  if constexpr (sizeof(Mask) == 8)
    return static_cast<int>(_mm_popcnt_u64(mask & ((uint64_t{1} << (8 * j)) - 1)));
  else
    return _mm_popcnt_u32(mask & ((1u << (8 * j)) - 1));
}

// Class lanes [C][8] (class c in lane c % 8 of register c / 8): acc[c] += w[f] for the features
// f = first + k of row (first, mask), each class's one addition; the other lanes keep their
// bits. Mask: uint32_t (C <= 4) or uint64_t (C <= 8).
template <int C, typename Mask>
SEPTA_AVX512 __attribute__((always_inline)) inline void add_row_to_lanes(__m512d* acc,
                                                                         Mask mask,
                                                                         const double* row) {
  static_assert(C <= 2 * static_cast<int>(sizeof(Mask)), "a register of 8 classes per byte");
  for (int j = 0; j < C; ++j) {
    const __mmask8 k = static_cast<__mmask8>(mask >> (8 * j));
    const int before = bits_before(mask, j);
    acc[j] = _mm512_mask_add_pd(acc[j], k, acc[j], _mm512_maskz_expandloadu_pd(k, row + before));
  }
}

// out[k] += lanes[class of feature first + k] for the row's features (out: the row's values),
// one addition each. All loads come before the stores: a masked store keeps a later load of
// its 64 bytes waiting until it is written (no forwarding).
template <int C, typename Mask>
SEPTA_AVX512 __attribute__((always_inline)) inline void add_lanes_to_row(const __m512d* lanes,
                                                                         Mask mask,
                                                                         double* out) {
  static_assert(C <= 2 * static_cast<int>(sizeof(Mask)), "a register of 8 classes per byte");
  __m512d sum[C];
  __mmask8 store[C];
  int before[C];
  for (int j = 0; j < C; ++j) {
    const uint32_t k = static_cast<uint32_t>(mask >> (8 * j)) & 0xffu;
    before[j] = bits_before(mask, j);
    store[j] = static_cast<__mmask8>((1u << _mm_popcnt_u32(k)) - 1);
    sum[j] = _mm512_add_pd(_mm512_maskz_loadu_pd(store[j], out + before[j]),
                           _mm512_maskz_compress_pd(static_cast<__mmask8>(k), lanes[j]));
  }
  for (int j = 0; j < C; ++j) _mm512_mask_storeu_pd(out + before[j], store[j], sum[j]);
}

// The lanes of classes [8j, min(8j + 8, K)) of register j.
inline __mmask8 class_lanes(std::size_t K, int j) {
  const std::size_t here = K > 8u * j ? std::min<std::size_t>(8, K - 8u * j) : 0;
  return static_cast<__mmask8>((1u << here) - 1);
}
#endif

}  // namespace septa::crf
