#include "crf/io/line_reader.h"

#include <gtest/gtest.h>

#include <sstream>

namespace septa::crf {
namespace {

std::vector<std::string> all_lines(const std::string& text, std::size_t block_size) {
  std::istringstream in(text);
  LineReader reader(in, "t.txt", kDefaultMaxLineBytes, block_size);
  std::vector<std::string> lines;
  std::string_view line;
  while (reader.next(line)) {
    lines.emplace_back(line);
    EXPECT_EQ(reader.line_number(), lines.size());
  }
  return lines;
}

TEST(LineReader, SplitsLfCrlfAndUnterminatedLastLine) {
  const std::vector<std::string> expected = {"alpha", "", "beta gamma", "", "delta"};
  for (std::size_t block : {1u, 2u, 3u, 7u, 1024u})
    EXPECT_EQ(all_lines("alpha\r\n\nbeta gamma\n\r\ndelta", block), expected) << block;
}

TEST(LineReader, LinesLongerThanTheBlockSurvive) {
  const std::string longline(10000, 'x');
  const auto lines = all_lines(longline + "\n" + longline + "y\n", 64);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], longline);
  EXPECT_EQ(lines[1], longline + "y");
}

TEST(LineReader, EmptyInputHasNoLines) { EXPECT_TRUE(all_lines("", 16).empty()); }

TEST(TextCheck, AcceptsUtf8RejectsNulAndBadSequences) {
  const char* why = nullptr;
  EXPECT_TRUE(is_text("Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x98\x80", &why));
  EXPECT_FALSE(is_text(std::string_view("a\0b", 3), &why));
  EXPECT_STREQ(why, "NUL byte");
  EXPECT_FALSE(is_text("\xFF", &why));
  EXPECT_STREQ(why, "invalid UTF-8");
  EXPECT_FALSE(is_text("\xC3", &why));          // truncated
  EXPECT_FALSE(is_text("\xC0\xAF", &why));      // overlong
  EXPECT_FALSE(is_text("\xED\xA0\x80", &why));  // surrogate
  EXPECT_FALSE(is_text("\xE2\x28\xA1", &why));  // bad continuation
}

TEST(SplitWhitespace, SpacesAndTabsInAnyRun) {
  std::vector<std::string_view> fields;
  split_whitespace("  a\t\tb  c \t", fields);
  EXPECT_EQ(fields, (std::vector<std::string_view>{"a", "b", "c"}));
  split_whitespace(" \t ", fields);
  EXPECT_TRUE(fields.empty());
}

}  // namespace
}  // namespace septa::crf
