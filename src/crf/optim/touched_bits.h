// Private to src/crf/optim: the bitset of the weights an SGD part changed (one bit per weight).
#ifndef SEPTA_CRF_OPTIM_TOUCHED_BITS_H
#define SEPTA_CRF_OPTIM_TOUCHED_BITS_H

#include <cstddef>
#include <cstdint>

namespace septa::crf {

// Marks weights [first, last) in a bitset, a word at a time (bit by bit, each read-modify-write
// of a word waited for the previous one: 7% of a unary fit).
inline void mark_range(uint64_t* bits, std::size_t first, std::size_t last) {
  if (first >= last) return;
  const std::size_t w0 = first >> 6, w1 = (last - 1) >> 6;
  const uint64_t head = ~uint64_t{0} << (first & 63);
  const uint64_t tail = ~uint64_t{0} >> (63 - ((last - 1) & 63));
  if (w0 == w1) {
    bits[w0] |= head & tail;
    return;
  }
  bits[w0] |= head;
  for (std::size_t w = w0 + 1; w < w1; ++w) bits[w] = ~uint64_t{0};
  bits[w1] |= tail;
}

/*
 * The set bits of touched [words] from word `word` on, as ids (word * 64 + bit) in increasing
 * order into out [capacity], each word read set to 0; stops at the end or before a block whose
 * ids might not fit (take_touched: a word, 64 ids; the vector version: 8 words, 512 ids; each
 * may write up to 16 slots past its last id). Returns the ids written; `word` is where it
 * stopped. A train_part's updated weights (sgd.cc).
 */
std::size_t take_touched(uint64_t* touched, std::size_t& word, std::size_t words, uint32_t* out,
                         std::size_t capacity);
// The same with AVX-512 (callable only where have_vector_take_touched()).
std::size_t take_touched_vector(uint64_t* touched, std::size_t& word, std::size_t words,
                                uint32_t* out, std::size_t capacity);
bool have_vector_take_touched();

}  // namespace septa::crf

#endif  // SEPTA_CRF_OPTIM_TOUCHED_BITS_H
