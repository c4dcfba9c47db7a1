#include "util/default_init.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "crf/features/dataset.h"
#include "crf/optim/huge_pages.h"

namespace septa::util {
namespace {

// Shrinking and growing again within the capacity: a default-initialising construct() leaves
// the old bytes where std::allocator's value-initialisation writes zeros.
template <class Vector>
void expect_regrown_elements_unwritten() {
  Vector v(64, 0x5a);
  const auto* before = v.data();
  v.resize(8);
  v.resize(64);
  ASSERT_EQ(v.data(), before);  // no reallocation
  for (std::size_t i = 8; i < v.size(); ++i) EXPECT_EQ(v[i], 0x5a) << i;
  v.resize(70, 3);  // construct(p, value) still copies its argument
  EXPECT_EQ(v[69], 3);
}

TEST(DefaultInitConstruct, UnzeroedAllocatorLeavesNewElementsUnwritten) {
  expect_regrown_elements_unwritten<
      std::vector<unsigned char, crf::UnzeroedAllocator<unsigned char>>>();
}

TEST(DefaultInitConstruct, UnzeroedHugePageAllocatorLeavesNewElementsUnwritten) {
  expect_regrown_elements_unwritten<
      std::vector<unsigned char, crf::UnzeroedHugePageAllocator<unsigned char>>>();
}

TEST(DefaultInitConstruct, StdAllocatorZeroesThem) {  // the contrast the two above rely on
  std::vector<unsigned char> v(64, 0x5a);
  v.resize(8);
  v.resize(64);
  for (std::size_t i = 8; i < v.size(); ++i) EXPECT_EQ(v[i], 0) << i;
}

}  // namespace
}  // namespace septa::util
