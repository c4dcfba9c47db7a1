// Transparent huge pages for the large arrays that SGD steps read in random order.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

#include "util/default_init.h"

namespace septa::crf {

/*
 * A step of the sharded SGD reads an instance record, its cached ranges or features and its
 * weights, each on a random 4 KB page of arrays of 2-30 MB: with 4 KB pages most of those reads
 * also miss the TLB (CoNLL-2000, one thread: the unary shard parts took about 12% longer).
 * Such arrays are allocated here, on transparent huge pages (madvise MADV_HUGEPAGE before the
 * first write); where the kernel gives none (THP disabled, another system) the pages simply
 * stay small.
 */

// Memory of at least `bytes` for an array not yet written (its contents undefined): from 1 MB
// on, a mapping of its own, 2 MB aligned, its size rounded up to 2 MB pages and advised before
// the first write, so that it faults in huge pages (below 1 MB: malloc). free_huge takes the
// same `bytes`. While a HugePagePool is open, freed mappings are pooled for the
// process's next requests, whose pages are then there already.
void* allocate_huge(std::size_t bytes);
void free_huge(void* p, std::size_t bytes);

// allocate_huge's memory, all zero bits: a fresh mapping is zero, so it is not written here
// (its pages fault in where the array is first written, on the threads that write it, instead
// of all on the caller's before); a pooled one or a smaller array is cleared.
void* allocate_zeroed_huge(std::size_t bytes);

// A scope (a training run) in which freed huge mappings are pooled for the next requests; the
// last open scope's end unmaps the pool (outside every scope free_huge unmaps at once).
class HugePagePool {
 public:
  HugePagePool();
  ~HugePagePool();
  HugePagePool(const HugePagePool&) = delete;
  HugePagePool& operator=(const HugePagePool&) = delete;
};
// Unmaps the pooled mappings now (release_free_memory: where the heap's free memory goes back).
void trim_huge_pool();
// Bytes the pool holds (for tests).
std::size_t huge_pool_bytes();

/*
 * [n] T (trivial) on huge pages, not initialised (allocate_huge): for the arrays written in
 * full before they are read (no pass that writes zeros first, and a pooled mapping is not
 * cleared).
 */
template <class T>
class HugeArray {
 public:
  HugeArray() = default;
  explicit HugeArray(std::size_t n)
      : HugeArray(n ? static_cast<T*>(allocate_huge(n * sizeof(T))) : nullptr, n) {}
  HugeArray(HugeArray&& other) noexcept { swap(other); }
  HugeArray& operator=(HugeArray&& other) noexcept {
    HugeArray(std::move(other)).swap(*this);
    return *this;
  }
  HugeArray(const HugeArray&) = delete;
  HugeArray& operator=(const HugeArray&) = delete;
  ~HugeArray() {
    if (data_) free_huge(data_, size_ * sizeof(T));
  }
  void swap(HugeArray& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }

 protected:
  HugeArray(T* data, std::size_t n) : data_(data), size_(n) {}

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/*
 * [n] T (integers, floating point: all zero bits read as 0) on huge pages, zero from the start
 * without a pass that writes the zeros where the mapping is fresh (allocate_zeroed_huge). For
 * the arrays set at random from zero on several threads: a std::vector(n, 0) wrote, and
 * faulted in, all of it on the constructing thread alone first.
 */
template <class T>
class ZeroedHugeArray : public HugeArray<T> {
 public:
  ZeroedHugeArray() = default;
  explicit ZeroedHugeArray(std::size_t n)
      : HugeArray<T>(n ? static_cast<T*>(allocate_zeroed_huge(n * sizeof(T))) : nullptr, n) {}
};

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

/*
 * HugePageAllocator whose elements are default-initialised: vector::resize(n) of a trivial T
 * leaves them unwritten (their contents undefined, as allocate_huge's), where value-initialisation
 * zeroes, and faults in, the whole array on the resizing thread alone. For the arrays that a
 * parallel pass then writes in full (RangeCache's ranges: CoNLL-2003 NER, 38 MB zeroed on one
 * thread before the unary SGD).
 */
template <class T>
struct UnzeroedHugePageAllocator : HugePageAllocator<T>, util::DefaultInitConstruct {
  UnzeroedHugePageAllocator() = default;
  template <class U>
  UnzeroedHugePageAllocator(const UnzeroedHugePageAllocator<U>&) {}
  using util::DefaultInitConstruct::construct;
};

}  // namespace septa::crf
