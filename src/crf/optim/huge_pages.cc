#include "crf/optim/huge_pages.h"

#include <cstdint>
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
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kSmallest) {
    // A mapping of its own (not the malloc heap: a freed, advised heap region would later
    // fault whole huge pages in for small allocations), 2 MB aligned, the slack unmapped.
    const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    void* m = ::mmap(nullptr, rounded + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    const auto at = reinterpret_cast<std::uintptr_t>(m);
    const std::uintptr_t aligned = (at + kHuge - 1) / kHuge * kHuge;
    if (aligned > at) ::munmap(m, aligned - at);
    const std::uintptr_t tail = at + rounded + kHuge - (aligned + rounded);
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + rounded), tail);
    void* p = reinterpret_cast<void*>(aligned);
    (void)::madvise(p, rounded, MADV_HUGEPAGE);
    return p;
  }
#endif
  if (void* p = std::malloc(bytes ? bytes : 1)) return p;
  throw std::bad_alloc();
}

void* allocate_zeroed_huge(std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kSmallest) return allocate_huge(bytes);  // a fresh anonymous mapping: zero
#endif
  if (void* p = std::calloc(bytes ? bytes : 1, 1)) return p;
  throw std::bad_alloc();
}

void free_huge(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kSmallest) {
    ::munmap(p, (bytes + kHuge - 1) / kHuge * kHuge);
    return;
  }
#endif
  std::free(p);
}

}  // namespace septa::crf
