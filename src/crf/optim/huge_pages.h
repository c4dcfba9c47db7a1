// Transparent huge pages for the large arrays that SGD steps read in random order.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

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

// allocate_huge's memory, all zero bits: a mapping of its own is zero when fresh, so it is not
// written here (its pages fault in where the array is first written, on the threads that write
// it, instead of all on the caller's before); a smaller array is cleared.
void* allocate_zeroed_huge(std::size_t bytes);

/*
 * [n] T (integers, floating point: all zero bits read as 0) on huge pages, zero from the start
 * without a pass that writes the zeros (allocate_zeroed_huge). For the arrays set at random
 * from zero on several threads: a std::vector(n, 0) wrote, and faulted in, all of it on the
 * constructing thread alone first.
 */
template <class T>
class ZeroedHugeArray {
 public:
  ZeroedHugeArray() = default;
  explicit ZeroedHugeArray(std::size_t n)
      : data_(n ? static_cast<T*>(allocate_zeroed_huge(n * sizeof(T))) : nullptr), size_(n) {}
  ZeroedHugeArray(ZeroedHugeArray&& other) noexcept { swap(other); }
  ZeroedHugeArray& operator=(ZeroedHugeArray&& other) noexcept {
    ZeroedHugeArray(std::move(other)).swap(*this);
    return *this;
  }
  ZeroedHugeArray(const ZeroedHugeArray&) = delete;
  ZeroedHugeArray& operator=(const ZeroedHugeArray&) = delete;
  ~ZeroedHugeArray() {
    if (data_) free_huge(data_, size_ * sizeof(T));
  }
  void swap(ZeroedHugeArray& other) noexcept {
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

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
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
 * leaves them unwritten (allocate_huge's mapping is fresh), where std::allocator's
 * value-initialisation zeroes, and faults in, the whole array on the resizing thread alone.
 * For the arrays that a parallel pass then writes in full (RangeCache's ranges: CoNLL-2003 NER,
 * 38 MB zeroed on one thread before the unary SGD).
 */
template <class T>
struct UnzeroedHugePageAllocator : HugePageAllocator<T> {
  UnzeroedHugePageAllocator() = default;
  template <class U>
  UnzeroedHugePageAllocator(const UnzeroedHugePageAllocator<U>&) {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

}  // namespace septa::crf
