#include "crf/features/masked_rows.h"

namespace septa::crf {

bool have_avx512() {
#ifdef SEPTA_MASKED_ROWS
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("popcnt");
  return ok;
#else
  return false;
#endif
}

std::vector<uint32_t> attribute_masks(const SparseFeatures& features, std::size_t K,
                                      std::size_t attributes) {
  std::vector<uint32_t> masks;
  if (K > 32) return masks;
  masks.assign(attributes, 0);
  const uint32_t* offsets = features.offsets.data();
  const int32_t* classes = features.classes.data();
  for (std::size_t a = 0; a < attributes; ++a) {
    uint32_t m = 0;
    for (uint32_t f = offsets[a]; f < offsets[a + 1]; ++f) {
      const uint32_t c = static_cast<uint32_t>(classes[f]);
      if (c >= 32 || (m >> c) != 0) return {};  // not increasing
      m |= uint32_t{1} << c;
    }
    masks[a] = m;
  }
  return masks;
}

}  // namespace septa::crf
