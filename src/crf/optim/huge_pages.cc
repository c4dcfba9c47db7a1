#include "crf/optim/huge_pages.h"

#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace septa::crf {
namespace {

constexpr std::size_t kHuge = std::size_t{2} << 20;
constexpr std::size_t kSmallest = std::size_t{1} << 20;  // below: ordinary allocation

}  // namespace

void* allocate_huge(std::size_t bytes) {
  if (bytes < kSmallest) {
    if (void* p = std::malloc(bytes ? bytes : 1)) return p;
    throw std::bad_alloc();
  }
  const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, rounded);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  (void)::madvise(p, rounded, MADV_HUGEPAGE);
#endif
  return p;
}

void free_huge(void* p, std::size_t) { std::free(p); }

}  // namespace septa::crf
