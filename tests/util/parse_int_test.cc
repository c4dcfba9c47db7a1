#include "util/parse_int.h"

#include <gtest/gtest.h>

#include <climits>

namespace septa::util {
namespace {

TEST(ParseInt, AcceptsSignedDecimalsWithinTheRange) {
  long long v = 7;
  EXPECT_TRUE(parse_int("0", -5, 5, v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(parse_int("+5", -5, 5, v));
  EXPECT_EQ(v, 5);
  EXPECT_TRUE(parse_int("-5", -5, 5, v));
  EXPECT_EQ(v, -5);
  EXPECT_TRUE(parse_int("007", 0, 10, v));
  EXPECT_EQ(v, 7);
  EXPECT_TRUE(parse_int("9223372036854775807", LLONG_MIN, LLONG_MAX, v));
  EXPECT_EQ(v, LLONG_MAX);
  EXPECT_TRUE(parse_int("-9223372036854775808", LLONG_MIN, LLONG_MAX, v));
  EXPECT_EQ(v, LLONG_MIN);
}

TEST(ParseInt, RejectsEverythingElseAndLeavesTheValue) {
  for (const char* text : {"", "+", "-", "+-5", "--5", " 5", "5 ", "5x", "1e3", "0x10", "1.0",
                           "6", "-6", "9223372036854775808", "99999999999999999999"}) {
    long long v = 42;
    EXPECT_FALSE(parse_int(text, -5, 5, v)) << "'" << text << "'";
    EXPECT_EQ(v, 42) << "'" << text << "'";
  }
}

}  // namespace
}  // namespace septa::util
