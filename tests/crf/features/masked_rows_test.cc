// with_registers: the register count the masked kernels are instantiated with for L labels.
#include "crf/features/masked_rows.h"

#include <gtest/gtest.h>

namespace septa::crf {
namespace {

TEST(WithRegisters, PicksTheRegistersOfEightLanesThatTheLabelsTakeWithinItsRange) {
  for (std::size_t L = 1; L <= 32; ++L) {
    int got = 0;
    with_registers<1, 4>(L, [&](auto C) { got = C; });
    EXPECT_EQ(got, static_cast<int>((L + 7) / 8)) << "L = " << L;
  }
  for (std::size_t L = 33; L <= 64; ++L) {
    int got = 0;
    with_registers<5, 8>(L, [&](auto C) { got = C; });
    EXPECT_EQ(got, static_cast<int>((L + 7) / 8)) << "L = " << L;
  }
  int got = 0;
  with_registers<1, 4>(40, [&](auto C) { got = C; });  // past the range: its last
  EXPECT_EQ(got, 4);
  with_registers<5, 8>(3, [&](auto C) { got = C; });  // below it: its first
  EXPECT_EQ(got, 5);
}

}  // namespace
}  // namespace septa::crf
