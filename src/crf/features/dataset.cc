#include "crf/features/dataset.h"

#include <algorithm>

namespace septa::crf {

std::vector<std::size_t> partition_by_items(const Dataset& data, std::size_t parts) {
  const std::size_t N = data.size();
  std::vector<std::size_t> bounds{0};
  const double per_part = static_cast<double>(data.items()) / static_cast<double>(parts);
  std::size_t n = 0;
  for (std::size_t p = 1; p < parts; ++p) {
    const double target = per_part * static_cast<double>(p);
    while (n < N && static_cast<double>(data.sequence_offsets[n + 1]) <= target) ++n;
    bounds.push_back(std::max(n, bounds.back()));
  }
  bounds.push_back(N);
  return bounds;
}

}  // namespace septa::crf
