#include "crf/lattice/fast_exp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace septa::crf {
namespace {

TEST(FastExp, MatchesTheLibraryToAFewUlpsOverTheWholeRange) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-707.0, 708.0);
  double worst = 0.0;
  for (int i = 0; i < 200000; ++i) {
    const double x = i < 1000 ? (i - 500) * 1e-3 : u(rng);
    worst = std::max(worst, std::fabs(fast_exp(x) / std::exp(x) - 1.0));
  }
  EXPECT_LT(worst, 1e-15);
  EXPECT_EQ(fast_exp(0.0), 1.0);
  EXPECT_NEAR(fast_exp(1.0), M_E, 1e-15 * M_E);
}

TEST(FastExp, ClampsInsteadOfOverflowing) {
  EXPECT_TRUE(std::isfinite(fast_exp(1e6)));
  EXPECT_GE(fast_exp(-1e6), 0.0);
  EXPECT_LT(fast_exp(-1e6), 1e-300);
  EXPECT_LT(fast_exp(-INFINITY), 1e-300);
}

}  // namespace
}  // namespace septa::crf
