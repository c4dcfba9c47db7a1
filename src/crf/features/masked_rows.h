// An attribute's row of (attribute, class) features as its first feature and a mask of its
// classes (K <= 32): on AVX-512 a row's weights go into the lanes of its classes in one
// masked expand-load, and class values into the row's feature order in one compress, with
// no loop over the row and no read of its classes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
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

// Whether the processor runs the AVX-512 kernels below (false where they are not compiled).
bool have_avx512();

// [attributes] the class mask of each attribute's features, or empty when some attribute's
// classes do not increase (or K > 32).
std::vector<uint32_t> attribute_masks(const SparseFeatures& features, std::size_t K,
                                      std::size_t attributes);

#ifdef SEPTA_MASKED_ROWS
// Class lanes [C][8] (class c in lane c % 8 of register c / 8): acc[c] += w[f] for the features
// f = first + k of row (first, mask), each class's one addition; the other lanes keep their
// bits.
template <int C>
SEPTA_AVX512 __attribute__((always_inline)) inline void add_row_to_lanes(__m512d* acc,
                                                                         uint32_t mask,
                                                                         const double* row) {
  for (int j = 0; j < C; ++j) {
    const __mmask8 k = static_cast<__mmask8>(mask >> (8 * j));
    const int before = j == 0 ? 0 : _mm_popcnt_u32(mask & ((1u << (8 * j)) - 1));
    acc[j] = _mm512_mask_add_pd(acc[j], k, acc[j], _mm512_maskz_expandloadu_pd(k, row + before));
  }
}

// out[k] += lanes[class of feature first + k] for the row's features (out: the row's values),
// one addition each. All loads come before the stores: a masked store keeps a later load of
// its 64 bytes waiting until it is written (no forwarding).
template <int C>
SEPTA_AVX512 __attribute__((always_inline)) inline void add_lanes_to_row(const __m512d* lanes,
                                                                         uint32_t mask,
                                                                         double* out) {
  __m512d sum[C];
  __mmask8 store[C];
  int before[C];
  for (int j = 0; j < C; ++j) {
    const uint32_t k = (mask >> (8 * j)) & 0xffu;
    before[j] = j == 0 ? 0 : _mm_popcnt_u32(mask & ((1u << (8 * j)) - 1));
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
