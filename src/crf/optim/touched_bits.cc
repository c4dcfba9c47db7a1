#include "crf/optim/touched_bits.h"

#include <algorithm>
#include <cstring>

#include "crf/features/masked_rows.h"

namespace septa::crf {

std::size_t take_touched(uint64_t* touched, std::size_t& word, std::size_t words, uint32_t* out,
                         std::size_t capacity) {
  std::size_t k = 0;
  for (; word < words && k + 64 + 16 <= capacity; ++word) {
    uint64_t bits = touched[word];
    if (!bits) continue;
    touched[word] = 0;
    const uint32_t base = static_cast<uint32_t>(word * 64);
    do {
      out[k++] = base + static_cast<uint32_t>(__builtin_ctzll(bits));
      bits &= bits - 1;
    } while (bits);
  }
  return k;
}

bool have_vector_take_touched() { return have_avx512(); }

#ifdef SEPTA_MASKED_ROWS
/*
 * Eight words tested at once, and each nonzero word's ids written 16 bit positions at a time:
 * the lanes (base + 0..15) of its set bits compressed to the front of a vector and stored
 * whole, the count added after. No loop per bit: the scalar loop's exit mispredicted about once
 * per word (perf: 43% of train_part's own samples were the bit loop; CoNLL-2000, a part's
 * bitset has 7,100 (unary) or 18,000 (pairwise) words, 38% / 21% of them nonzero, 9.4 / 4.5
 * bits each).
 */
SEPTA_AVX512 std::size_t take_touched_vector(uint64_t* touched, std::size_t& word,
                                             std::size_t words, uint32_t* out,
                                             std::size_t capacity) {
  std::size_t k = 0;
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (std::size_t n = 0; word < words && k + 8 * 64 + 16 <= capacity; word += n) {
    n = std::min<std::size_t>(8, words - word);
    const __mmask8 in = static_cast<__mmask8>((1u << n) - 1);
    const __m512i block = _mm512_maskz_loadu_epi64(in, touched + word);
    __mmask8 nonzero = _mm512_test_epi64_mask(block, block);
    if (!nonzero) continue;
    _mm512_mask_storeu_epi64(touched + word, in, _mm512_setzero_si512());
    uint64_t bits_of[8];
    _mm512_storeu_si512(bits_of, block);
    do {
      const unsigned j = static_cast<unsigned>(__builtin_ctz(nonzero));
      nonzero = static_cast<__mmask8>(nonzero & (nonzero - 1));
      const uint64_t bits = bits_of[j];
      const int base = static_cast<int>((word + j) * 64);
      for (int c = 0; c < 4; ++c) {
        const __mmask16 m = static_cast<__mmask16>(bits >> (16 * c));
        const __m512i ids = _mm512_add_epi32(lanes, _mm512_set1_epi32(base + 16 * c));
        _mm512_storeu_si512(out + k, _mm512_maskz_compress_epi32(m, ids));
        k += static_cast<std::size_t>(__builtin_popcount(m));
      }
    } while (nonzero);
  }
  return k;
}
#else
std::size_t take_touched_vector(uint64_t* touched, std::size_t& word, std::size_t words,
                                uint32_t* out, std::size_t capacity) {
  return take_touched(touched, word, words, out, capacity);
}
#endif

}  // namespace septa::crf
