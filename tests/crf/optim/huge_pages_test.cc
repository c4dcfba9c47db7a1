// HugePageAllocator: arrays from 1 MB on start on a 2 MB boundary (so that whole huge pages back
// them), smaller ones come from malloc; contents behave as with std::allocator.
#include "crf/optim/huge_pages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace septa::crf {
namespace {

TEST(HugePages, LargeArraysAreAlignedToHugePagesAndHoldTheirValues) {
  for (std::size_t n : {std::size_t{1} << 17, std::size_t{3} << 19, std::size_t{5} << 20}) {
    std::vector<double, HugePageAllocator<double>> v(n);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % (std::uintptr_t{2} << 20), 0u) << n;
    std::iota(v.begin(), v.end(), 0.0);
    v.push_back(-1.0);  // grows: a new aligned array, the values copied
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v.data()) % (std::uintptr_t{2} << 20), 0u) << n;
    EXPECT_EQ(v[n - 1], static_cast<double>(n - 1));
    EXPECT_EQ(v.back(), -1.0);
  }
  std::vector<int, HugePageAllocator<int>> small(100, 7);  // below 1 MB: malloc
  EXPECT_EQ(std::accumulate(small.begin(), small.end(), 0), 700);
  std::vector<int, HugePageAllocator<int>> empty;
  empty.reserve(0);
  EXPECT_TRUE(empty.empty());
}

// ZeroedHugeArray: zero everywhere without a clearing pass, from malloc'd memory that held other
// values before (small) and from fresh mappings (large); moves hand the memory over.
TEST(HugePages, ZeroedArraysReadZeroAndMove) {
  for (int round = 0; round < 2; ++round) {
    {
      // Leaves dirty memory in the heap, which a small zeroed array may then be given.
      std::vector<uint64_t> dirty(1000, ~uint64_t{0});
      EXPECT_EQ(dirty.back(), ~uint64_t{0});
    }
    for (std::size_t n : {std::size_t{1000}, std::size_t{1} << 17, std::size_t{5} << 20}) {
      ZeroedHugeArray<uint64_t> a(n);
      ASSERT_EQ(a.size(), n);
      uint64_t any = 0;
      for (std::size_t i = 0; i < n; ++i) any |= a[i];
      EXPECT_EQ(any, 0u) << n;
      if (n * sizeof(uint64_t) >= (std::size_t{1} << 20)) {
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % (std::uintptr_t{2} << 20), 0u) << n;
      }
      a[n - 1] = 5;
      uint64_t* data = a.data();
      ZeroedHugeArray<uint64_t> b(std::move(a));
      EXPECT_TRUE(a.empty());
      EXPECT_EQ(b.data(), data);
      EXPECT_EQ(b[n - 1], 5u);
      a = std::move(b);
      EXPECT_EQ(a.data(), data);
      EXPECT_TRUE(b.empty());
      std::fill(a.begin(), a.end(), ~uint64_t{0});  // dirty again for the next round's arrays
    }
  }
  ZeroedHugeArray<double> none(0);
  EXPECT_TRUE(none.empty());
}

// The pool: inside a HugePagePool scope a freed mapping serves the next request that fits (its
// head; the tail stays pooled), a zeroed request from it reads zero where the last user wrote,
// a request nothing pooled holds first unmaps as many pooled bytes, at most 16 MB stay pooled;
// trim_huge_pool and the scope's end unmap the pool, and outside any scope nothing is pooled.
TEST(HugePages, FreedMappingsAreTakenAgainInsideAScopeClearedWhenZeroedAndReleasedAtItsEnd) {
  constexpr std::size_t MB = std::size_t{1} << 20;
  ASSERT_EQ(huge_pool_bytes(), 0u);
  { HugeArray<char> outside(2 * MB); }
  EXPECT_EQ(huge_pool_bytes(), 0u);
#if defined(__linux__)
  {
    const HugePagePool scope;
    uint64_t* first = nullptr;
    {
      HugeArray<uint64_t> a(6 * MB / sizeof(uint64_t));
      std::fill(a.begin(), a.end(), ~uint64_t{0});
      first = a.data();
    }
    EXPECT_EQ(huge_pool_bytes(), 6 * MB);
    {
      ZeroedHugeArray<uint64_t> z(3 * MB / sizeof(uint64_t));  // 4 MB of the 6 (2 MB pages)
      EXPECT_EQ(z.data(), first);
      EXPECT_EQ(huge_pool_bytes(), 2 * MB);
      uint64_t any = 0;
      for (uint64_t x : z) any |= x;
      EXPECT_EQ(any, 0u);
      HugeArray<double> tail(2 * MB / sizeof(double));  // the pooled tail
      EXPECT_EQ(reinterpret_cast<char*>(tail.data()), reinterpret_cast<char*>(first) + 4 * MB);
      EXPECT_EQ(huge_pool_bytes(), 0u);
      std::fill(tail.begin(), tail.end(), 1.5);
      z[0] = 9;
      HugeArray<double> fresh(8 * MB / sizeof(double));  // nothing pooled: a new mapping
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(fresh.data()) % (std::uintptr_t{2} << 20), 0u);
      fresh[fresh.size() - 1] = 2.0;
      EXPECT_EQ(fresh[fresh.size() - 1], 2.0);
    }
    EXPECT_EQ(huge_pool_bytes(), 14 * MB);
    {
      HugeArray<char> big(20 * MB);  // nothing pooled holds it: the 14 MB pooled are unmapped
      EXPECT_EQ(huge_pool_bytes(), 0u);
      big[20 * MB - 1] = 1;
    }
    EXPECT_EQ(huge_pool_bytes(), 16 * MB);  // at most 16 MB pooled: its head kept
    {
      const HugePagePool inner;  // nested: the pool stays until the outer scope's end
    }
    EXPECT_EQ(huge_pool_bytes(), 16 * MB);
    {
      HugeArray<char> head(16 * MB);
      std::fill(head.begin(), head.end(), 'x');  // the kept head is mapped and writable
    }
    trim_huge_pool();
    EXPECT_EQ(huge_pool_bytes(), 0u);
  }
  EXPECT_EQ(huge_pool_bytes(), 0u);
#endif
}

}  // namespace
}  // namespace septa::crf
