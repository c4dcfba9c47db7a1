// The width grid: exact channel counts, validation, off-grid messages, and Scala's stable
// sampling checked over many draws and at the extremes of the random source.
#include "nn/methods/scala/grid.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "septa/error.h"

namespace septa::nn {
namespace {

TEST(WidthGridTest, DefaultGridHasThirteenWidthsOfWholeHeads) {
  const WidthGrid grid(64, 0.25, 1.0 / 16, 4);
  ASSERT_EQ(grid.size(), 13);
  for (int64_t k = 0; k < 13; ++k) EXPECT_EQ(grid.widths()[k], 16 + 4 * k);
  EXPECT_EQ(grid.smallest(), 16);
  EXPECT_EQ(grid.largest(), 64);
  EXPECT_DOUBLE_EQ(grid.ratios()[3], 0.4375);
  EXPECT_EQ(grid.width_of(0.4375), 28);
  EXPECT_TRUE(grid.on_grid(1.0));
  EXPECT_FALSE(grid.on_grid(0.4));
}

TEST(WidthGridTest, RejectsGridsThatDoNotSliceIntoWholeHeads) {
  EXPECT_THROW(WidthGrid(64, 0.25, 0.1, 4), OptionError);        // 0.75 / 0.1 not whole
  EXPECT_THROW(WidthGrid(48, 0.25, 1.0 / 16, 4), OptionError);   // 0.3125 * 48 = 15 channels
  EXPECT_THROW(WidthGrid(64, 0.25, 1.0 / 32, 4), OptionError);   // 18 channels: not 4 heads
  EXPECT_THROW(WidthGrid(64, 0.0, 0.25, 4), OptionError);
  EXPECT_THROW(WidthGrid(64, 0.25, 0.0, 4), OptionError);
  EXPECT_NO_THROW(WidthGrid(64, 1.0, 1.0, 4));  // one width: a plain ViT
}

TEST(WidthGridTest, OffGridWidthIsRejectedNamingTheNearestGridWidths) {
  const WidthGrid grid(64, 0.25, 1.0 / 16, 4);
  try {
    grid.width_of(0.4);
    FAIL() << "no error";
  } catch (const OptionError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("0.375 and 0.4375"), std::string::npos) << message;
    EXPECT_NE(message.find("not on the grid"), std::string::npos) << message;
  }
  try {
    grid.width_of(0.1);
    FAIL() << "no error";
  } catch (const OptionError& e) {
    EXPECT_NE(std::string(e.what()).find("nearest grid width is 0.25"), std::string::npos) << e.what();
  }
}

// m1 in the lower half (never s), m2 in the upper half (never l), m1 < m2, both on the grid;
// every allowed value is drawn.
void check_stable_sampling(const WidthGrid& grid) {
  std::mt19937_64 random(11);
  const WidthGrid::UniformInt uniform = [&random](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(random);
  };
  const std::set<int64_t> widths(grid.widths().begin(), grid.widths().end());
  const int64_t mid_channels = grid.widths()[grid.size() / 2];
  std::set<int64_t> seen1, seen2;
  for (int i = 0; i < 20000; ++i) {
    const auto [m1, m2] = grid.stable_pair(uniform);
    ASSERT_TRUE(widths.count(m1) && widths.count(m2)) << m1 << " " << m2;
    ASSERT_NE(m1, grid.smallest());
    ASSERT_NE(m2, grid.largest());
    ASSERT_LT(m1, m2);
    ASSERT_LT(m1, mid_channels);
    ASSERT_GE(m2, mid_channels);
    seen1.insert(m1);
    seen2.insert(m2);
  }
  // Lower half: indices 1 .. X/2 - 1; upper half: X/2 .. X-2.
  EXPECT_EQ(static_cast<int64_t>(seen1.size()), grid.size() / 2 - 1);
  EXPECT_EQ(static_cast<int64_t>(seen2.size()), grid.size() - 1 - grid.size() / 2);
  // The extremes of the random source stay inside too.
  for (const bool high : {false, true}) {
    const auto [m1, m2] =
        grid.stable_pair([high](int64_t lo, int64_t hi) { return high ? hi : lo; });
    EXPECT_TRUE(m1 > grid.smallest() && m1 < m2 && m2 < grid.largest());
  }
}

TEST(StableSamplingTest, NeverReturnsSmallestLargestOrOffGridAndKeepsM1BelowM2) {
  check_stable_sampling(WidthGrid(64, 0.25, 1.0 / 16, 4));  // 13 widths (odd)
  check_stable_sampling(WidthGrid(64, 0.25, 1.0 / 8, 4));   // 7 widths
  check_stable_sampling(WidthGrid(32, 0.25, 0.25, 4));      // 4 widths: m1, m2 fixed
  check_stable_sampling(WidthGrid(64, 0.125, 1.0 / 16, 4)); // 15 widths
  check_stable_sampling(WidthGrid(96, 0.25, 1.0 / 24, 4));  // 19 widths
  EXPECT_THROW(WidthGrid(32, 0.5, 0.25, 4).stable_pair([](int64_t lo, int64_t) { return lo; }),
               OptionError);  // 3 widths: no two intermediates
}

TEST(StableSamplingTest, UniformPairIsTwoDistinctInteriorWidths) {
  const WidthGrid grid(64, 0.25, 1.0 / 16, 4);
  std::mt19937_64 random(3);
  const WidthGrid::UniformInt uniform = [&random](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(random);
  };
  std::set<std::pair<int64_t, int64_t>> pairs;
  for (int i = 0; i < 20000; ++i) {
    const auto [a, b] = grid.uniform_pair(uniform);
    ASSERT_LT(a, b);
    ASSERT_GT(a, grid.smallest());
    ASSERT_LT(b, grid.largest());
    ASSERT_TRUE(grid.on_grid(static_cast<double>(a) / 64) && grid.on_grid(static_cast<double>(b) / 64));
    pairs.insert({a, b});
  }
  EXPECT_EQ(pairs.size(), 11u * 10u / 2u);  // every pair of the 11 interior widths
}

}  // namespace
}  // namespace septa::nn
