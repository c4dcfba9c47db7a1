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

// A NUL, a stray high byte or a 2-byte character at any place of longer ASCII text (is_text
// reads 8 ASCII bytes at a time: the place within the word and the word must not matter).
TEST(TextCheck, FindsABadByteAtAnyPlaceOfLongText) {
  const char* why = nullptr;
  for (std::size_t n = 1; n <= 40; ++n) {
    const std::string ascii(n, 'q');
    EXPECT_TRUE(is_text(ascii, &why)) << n;
    for (std::size_t at = 0; at < n; ++at) {
      std::string nul = ascii, high = ascii;
      nul[at] = '\0';
      high[at] = '\x80';
      EXPECT_FALSE(is_text(nul, &why)) << n << " " << at;
      EXPECT_STREQ(why, "NUL byte");
      EXPECT_FALSE(is_text(high, &why)) << n << " " << at;
      EXPECT_STREQ(why, "invalid UTF-8");
      EXPECT_TRUE(is_text(ascii.substr(0, at) + "\xC3\xBC" + ascii.substr(at), &why)) << n << " " << at;
      EXPECT_FALSE(is_text(ascii.substr(0, at) + "\xC3" + ascii.substr(at), &why)) << n << " " << at;
    }
  }
}

TEST(SplitWhitespace, SpacesAndTabsInAnyRun) {
  std::vector<std::string_view> fields;
  split_whitespace("  a\t\tb  c \t", fields);
  EXPECT_EQ(fields, (std::vector<std::string_view>{"a", "b", "c"}));
  split_whitespace(" \t ", fields);
  EXPECT_TRUE(fields.empty());
}

// Exactly space, TAB, CR, VT and FF separate fields: other control bytes, the bytes next to
// ' ' and high bytes are field text.
TEST(SplitWhitespace, OnlyTheFiveBlankBytesSeparate) {
  std::vector<std::string_view> fields;
  split_whitespace("a\vb\fc\rd e\tf", fields);
  EXPECT_EQ(fields, (std::vector<std::string_view>{"a", "b", "c", "d", "e", "f"}));
  for (int c = 1; c < 256; ++c) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') continue;
    const std::string text = std::string("x") + static_cast<char>(c) + "y z";
    split_whitespace(text, fields);
    ASSERT_EQ(fields.size(), 2u) << c;
    EXPECT_EQ(fields[0], text.substr(0, 3)) << c;
  }
}

}  // namespace
}  // namespace septa::crf
