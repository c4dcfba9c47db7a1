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

namespace {

template <typename Mask>
std::vector<Mask> class_masks(const SparseFeatures& features, std::size_t attributes) {
  constexpr uint32_t kBits = 8 * sizeof(Mask);
  std::vector<Mask> masks(attributes, 0);
  const uint32_t* offsets = features.offsets.data();
  const int32_t* classes = features.classes.data();
  for (std::size_t a = 0; a < attributes; ++a) {
    Mask m = 0;
    for (uint32_t f = offsets[a]; f < offsets[a + 1]; ++f) {
      const uint32_t c = static_cast<uint32_t>(classes[f]);
      if (c >= kBits || (m >> c) != 0) return {};  // not increasing
      m |= Mask{1} << c;
    }
    masks[a] = m;
  }
  return masks;
}

}  // namespace

std::vector<uint32_t> attribute_masks(const SparseFeatures& features, std::size_t K,
                                      std::size_t attributes) {
  if (K > 32) return {};
  return class_masks<uint32_t>(features, attributes);
}

std::vector<uint64_t> wide_attribute_masks(const SparseFeatures& features, std::size_t K,
                                           std::size_t attributes) {
  if (K <= 32 || K > 64) return {};
  return class_masks<uint64_t>(features, attributes);
}

}  // namespace septa::crf
