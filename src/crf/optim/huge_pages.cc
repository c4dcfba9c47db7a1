#include "crf/optim/huge_pages.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace septa::crf {
namespace {

constexpr std::size_t kHuge = std::size_t{2} << 20;
constexpr std::size_t kSmallest = std::size_t{1} << 20;  // below: ordinary allocation

#if defined(__linux__) && defined(MADV_HUGEPAGE)

std::size_t rounded_size(std::size_t bytes) { return (bytes + kHuge - 1) / kHuge * kHuge; }

/*
 * The process's freed huge mappings, kept for its next ones while a HugePagePool scope is open
 * (a training run): a mapping taken again has its pages already, where a fresh one faults each
 * huge page in and has the kernel clear it (on the project's VM a process's first huge pages
 * cost 1.9-2.4 ms per MB when measured in a quiet hour). So the rate calibration takes the
 * set-up's freed arrays, the SGD's z and buffers the calibration's, the pairwise factor's
 * set-up the unary factor's.
 * Resident memory: at most kPoolCap bytes stay pooled (of a larger mapping its head; the oldest
 * go first); a request nothing pooled holds first unmaps as many pooled bytes as it maps (so
 * pool and mappings in use never hold more than before); release_free_memory (trim_huge_pool)
 * and the last scope's end unmap the pool, and outside every scope freed mappings are unmapped
 * at once. (Up to 64 MB and without the trim, the unary factor's freed range cache stayed
 * pooled through the pairwise SGD: CoNLL-2003 NER peak 186 -> 212 MB.)
 */
constexpr std::size_t kPoolCap = std::size_t{16} << 20;

struct Pool {
  struct Free {
    std::uintptr_t at;
    std::size_t size;  // a multiple of kHuge
  };
  std::mutex mutex;
  std::vector<Free> free;  // oldest first
  std::size_t held = 0;    // bytes in free
  int scopes = 0;          // open HugePagePool scopes
};

Pool& pool() {
  static Pool* p = new Pool;  // (never destroyed: arrays may be freed during static destruction)
  return *p;
}

// Unmaps free[0, n) (under the pool's lock).
void unmap_oldest(Pool& pool, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    ::munmap(reinterpret_cast<void*>(pool.free[i].at), pool.free[i].size);
    pool.held -= pool.free[i].size;
  }
  pool.free.erase(pool.free.begin(), pool.free.begin() + static_cast<std::ptrdiff_t>(n));
}

// A pooled mapping of `rounded` bytes (the smallest that holds them; its tail stays pooled),
// or nullptr after unmapping at least `rounded` pooled bytes.
void* take_pooled(std::size_t rounded) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  std::size_t best = p.free.size();
  for (std::size_t i = 0; i < p.free.size(); ++i)
    if (p.free[i].size >= rounded && (best == p.free.size() || p.free[i].size < p.free[best].size))
      best = i;
  if (best < p.free.size()) {
    Pool::Free& f = p.free[best];
    const std::uintptr_t at = f.at;
    if (f.size > rounded) {
      f.at += rounded;
      f.size -= rounded;
    } else {
      p.free.erase(p.free.begin() + static_cast<std::ptrdiff_t>(best));
    }
    p.held -= rounded;
    return reinterpret_cast<void*>(at);
  }
  std::size_t n = 0, unmapped = 0;
  while (n < p.free.size() && unmapped < rounded) unmapped += p.free[n++].size;
  unmap_oldest(p, n);
  return nullptr;
}

// A fresh mapping of its own (not the malloc heap: a freed, advised heap region would later
// fault whole huge pages in for small allocations), 2 MB aligned, the slack unmapped.
void* map_fresh(std::size_t rounded) {
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

}  // namespace

void* allocate_huge(std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kSmallest) {
    const std::size_t rounded = rounded_size(bytes);
    if (void* p = take_pooled(rounded)) return p;
    return map_fresh(rounded);
  }
#endif
  if (void* p = std::malloc(bytes ? bytes : 1)) return p;
  throw std::bad_alloc();
}

void* allocate_zeroed_huge(std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kSmallest) {
    const std::size_t rounded = rounded_size(bytes);
    if (void* p = take_pooled(rounded)) {  // written before: cleared here
      std::memset(p, 0, bytes);
      return p;
    }
    return map_fresh(rounded);  // fresh: zero (its pages fault in where first written)
  }
#endif
  if (void* p = std::calloc(bytes ? bytes : 1, 1)) return p;
  throw std::bad_alloc();
}

void free_huge(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kSmallest) {
    const std::size_t rounded = rounded_size(bytes);
    Pool& pl = pool();
    std::lock_guard<std::mutex> lock(pl.mutex);
    // (the mapping's head up to kPoolCap kept, the older ones unmapped first)
    const std::size_t keep = pl.scopes == 0 ? 0 : std::min(rounded, kPoolCap);
    if (keep < rounded) ::munmap(static_cast<char*>(p) + keep, rounded - keep);
    if (keep == 0) return;
    std::size_t n = 0, unmapped = 0;
    while (pl.held - unmapped + keep > kPoolCap) unmapped += pl.free[n++].size;
    unmap_oldest(pl, n);
    pl.free.push_back({reinterpret_cast<std::uintptr_t>(p), keep});
    pl.held += keep;
    return;
  }
#endif
  std::free(p);
}

void trim_huge_pool() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mutex);
  unmap_oldest(pl, pl.free.size());
#endif
}

HugePagePool::HugePagePool() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mutex);
  ++pl.scopes;
#endif
}

HugePagePool::~HugePagePool() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mutex);
  if (--pl.scopes == 0) unmap_oldest(pl, pl.free.size());
#endif
}

std::size_t huge_pool_bytes() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  Pool& pl = pool();
  std::lock_guard<std::mutex> lock(pl.mutex);
  return pl.held;
#else
  return 0;
#endif
}

}  // namespace septa::crf
