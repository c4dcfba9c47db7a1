// Default limits on hostile input. Each refusal names the file, the limit and the option that
// raises it; every reader and loader takes its limit as a parameter with these defaults.
#pragma once

#include <cstddef>

namespace septa::crf {

// Longest line of a data or evaluation file (--max-line-bytes): a reader holds at most this
// plus one 1 MiB read block in memory.
inline constexpr std::size_t kDefaultMaxLineBytes = std::size_t{16} << 20;  // 16 MiB
// Largest template file (--max-template-bytes).
inline constexpr std::size_t kDefaultMaxTemplateBytes = std::size_t{1} << 20;  // 1 MiB
// Largest model file (--max-model-bytes).
inline constexpr std::size_t kDefaultMaxModelBytes = std::size_t{4} << 30;  // 4 GiB
// Most distinct labels in training data (--max-labels): transitions alone take 8 L^2 bytes
// per worker and the lattice 8 T L^2.
inline constexpr std::size_t kDefaultMaxLabels = 5000;

}  // namespace septa::crf
