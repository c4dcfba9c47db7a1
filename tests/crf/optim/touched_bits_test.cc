#include "crf/optim/touched_bits.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace septa::crf {
namespace {

// The ids of a bitset in increasing order, bit by bit.
std::vector<uint32_t> brute_force(const std::vector<uint64_t>& bits) {
  std::vector<uint32_t> ids;
  for (std::size_t word = 0; word < bits.size(); ++word)
    for (uint32_t bit = 0; bit < 64; ++bit)
      if (bits[word] >> bit & 1) ids.push_back(static_cast<uint32_t>(word * 64 + bit));
  return ids;
}

// All the ids of `bits` taken by `take` in chunks of `capacity` (as train_part takes them); the
// bitset must be all zero after.
template <typename Take>
std::vector<uint32_t> take_all(std::vector<uint64_t> bits, std::size_t capacity, Take take) {
  std::vector<uint32_t> ids, chunk(capacity);
  for (std::size_t word = 0; word < bits.size();) {
    const std::size_t k = take(bits.data(), word, bits.size(), chunk.data(), capacity);
    if (k == 0) {
      EXPECT_EQ(word, bits.size());
      break;
    }
    ids.insert(ids.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(k));
  }
  for (uint64_t w : bits) EXPECT_EQ(w, 0u);
  return ids;
}

TEST(TouchedBits, TakenIdsAreTheSetBitsInOrderForEveryDensityAndLength) {
  std::mt19937_64 rng(5);
  const bool vector = have_vector_take_touched();
  // lengths not a multiple of 8 words (the vector version's masked tail), densities from empty
  // words to full ones, and chunks that fill before the end
  for (std::size_t words : {1, 7, 8, 9, 63, 130, 1000}) {
    for (double density : {0.0, 0.02, 0.3, 0.9, 1.0}) {
      std::vector<uint64_t> bits(words, 0);
      std::bernoulli_distribution set(density);
      for (std::size_t d = 0; d < 64 * words; ++d)
        if (set(rng)) bits[d / 64] |= uint64_t{1} << (d % 64);
      if (words > 2) bits[words - 1] |= uint64_t{1} << 63;  // the last bit of the last word
      const std::vector<uint32_t> expected = brute_force(bits);
      for (std::size_t capacity : {std::size_t{1024}, std::size_t{2048}}) {
        EXPECT_EQ(take_all(bits, capacity, take_touched), expected)
            << words << " words, density " << density << ", capacity " << capacity;
        if (vector) {
          EXPECT_EQ(take_all(bits, capacity, take_touched_vector), expected)
              << words << " words, density " << density << ", capacity " << capacity;
        }
      }
    }
  }
}

}  // namespace
}  // namespace septa::crf
