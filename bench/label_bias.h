// Benchmark and test data, not part of the library: Lafferty, McCallum & Pereira's (2001)
// label-bias source, a finite-state machine that emits "rib" or "rob" through noisy observations.
#pragma once

#include <cstdint>
#include <vector>

#include "septa/crf/corpus.h"

namespace septa::crf {

// `count` sequences of three tokens "symbol state": states r1 i2 b3 (rib) or r4 o5 b3 (rob),
// each chosen with probability 1/2; each observed symbol is the true one with probability
// 29/32, else one of the three other symbols of {r, i, o, b} (1/32 each). Seeded, deterministic.
std::vector<ColumnSentence> generate_rib_rob(std::size_t count, uint64_t seed);

}  // namespace septa::crf
