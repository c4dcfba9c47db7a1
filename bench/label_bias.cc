#include "bench/label_bias.h"

#include <random>
#include <string>

namespace septa::crf {

std::vector<ColumnSentence> generate_rib_rob(std::size_t count, uint64_t seed) {
  static const char* kSymbols[] = {"r", "i", "o", "b"};
  std::mt19937_64 rng(seed);
  std::vector<ColumnSentence> out;
  out.reserve(count);
  for (std::size_t n = 0; n < count; ++n) {
    const bool rib = (rng() & 1) == 0;
    const int truth[3] = {0, rib ? 1 : 2, 3};  // indices into kSymbols
    const char* states[3] = {rib ? "r1" : "r4", rib ? "i2" : "o5", "b3"};
    ColumnSentence sentence;
    sentence.first_line = 4 * n + 1;
    for (int t = 0; t < 3; ++t) {
      const uint64_t draw = rng() % 32;  // 0..28: the true symbol; 29, 30, 31: the others
      int symbol = truth[t];
      if (draw >= 29) symbol = (truth[t] + 1 + static_cast<int>(draw - 29)) % 4;
      sentence.columns.push_back({kSymbols[symbol], states[t]});
    }
    out.push_back(std::move(sentence));
  }
  return out;
}

}  // namespace septa::crf
