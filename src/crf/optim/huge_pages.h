// Transparent huge pages for the large arrays that SGD steps read in random order.
#pragma once

#include <cstddef>
#include <new>

namespace septa::crf {

/*
 * A step of the sharded SGD reads an instance record, its cached ranges or features and its
 * weights, each on a random 4 KB page of arrays of 2-30 MB: with 4 KB pages most of those reads
 * also miss the TLB (CoNLL-2000, one thread: the unary shard parts took about 12% longer).
 * Such arrays are allocated here, on transparent huge pages (madvise MADV_HUGEPAGE before the
 * first write); where the kernel gives none (THP disabled, another system) the pages simply
 * stay small.
 */

// Memory of at least `bytes` for an array not yet written: from 1 MB on, a mapping of its own,
// 2 MB aligned, its size rounded up to 2 MB pages and advised before the first write, so that
// it faults in huge pages (below 1 MB: malloc). free_huge takes the same `bytes`.
void* allocate_huge(std::size_t bytes);
void free_huge(void* p, std::size_t bytes);

// std::allocator with allocate_huge: for the arrays the steps read at random.
template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_huge(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { free_huge(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const HugePageAllocator<U>&) const { return false; }
};

}  // namespace septa::crf
