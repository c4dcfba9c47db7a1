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

}  // namespace
}  // namespace septa::crf
