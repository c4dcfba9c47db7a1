// HugePageAllocator: arrays from 1 MB on start on a 2 MB boundary (so that whole huge pages back
// them), smaller ones come from malloc; contents behave as with std::allocator.
#include "crf/optim/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
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

}  // namespace
}  // namespace septa::crf
