#include <gtest/gtest.h>

#include <sstream>

#include "septa/crf/corpus.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

std::vector<AttributeSequence> read(const std::string& text) {
  std::istringstream in(text);
  return read_attributes(in, "a.txt");
}

std::string error_of(const std::string& text) {
  try {
    read(text);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

TEST(AttributeReader, LabelsAttributesValuesAndSequences) {
  const auto s = read("B-NP\tw=He\tpos=PRP:0.5\nB-VP\tw=reckons\n\n\nO\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].labels, (std::vector<std::string>{"B-NP", "B-VP"}));
  ASSERT_EQ(s[0].attributes[0].size(), 2u);
  EXPECT_EQ(s[0].attributes[0][0].name, "w=He");
  EXPECT_EQ(s[0].attributes[0][0].value, 1.0);
  EXPECT_EQ(s[0].attributes[0][1].name, "pos=PRP");
  EXPECT_EQ(s[0].attributes[0][1].value, 0.5);
  EXPECT_EQ(s[0].first_line, 1u);
  EXPECT_EQ(s[0].weight, 1.0);
  EXPECT_EQ(s[1].labels, (std::vector<std::string>{"O"}));
  EXPECT_TRUE(s[1].attributes[0].empty());
  EXPECT_EQ(s[1].first_line, 5u);
}

TEST(AttributeReader, EscapesAndTheLastUnescapedColon) {
  const auto s = read("O\tw=a\\:b\tx\\\\y:2\tz\\:1\tc\\\\:3\tr:a:-1.5e1\tkeep\\n\n");
  const auto& a = s.at(0).attributes.at(0);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a[0].name, "w=a:b");
  EXPECT_EQ(a[0].value, 1.0);
  EXPECT_EQ(a[1].name, "x\\y");
  EXPECT_EQ(a[1].value, 2.0);
  EXPECT_EQ(a[2].name, "z:1");
  EXPECT_EQ(a[2].value, 1.0);
  EXPECT_EQ(a[3].name, "c\\");
  EXPECT_EQ(a[3].value, 3.0);
  EXPECT_EQ(a[4].name, "r:a");
  EXPECT_EQ(a[4].value, -15.0);
  EXPECT_EQ(a[5].name, "keep\\n");
}

TEST(AttributeReader, CrlfMissingFinalNewlineAndEmptyFields) {
  const auto s = read("A\tf\t\tg:+2\r\n\r\nB\th\t");
  ASSERT_EQ(s.size(), 2u);
  ASSERT_EQ(s[0].attributes[0].size(), 2u);
  EXPECT_EQ(s[0].attributes[0][1].name, "g");
  EXPECT_EQ(s[0].attributes[0][1].value, 2.0);
  EXPECT_EQ(s[0].attributes[0][0].name, "f");
  EXPECT_EQ(s[1].labels[0], "B");
  ASSERT_EQ(s[1].attributes[0].size(), 1u);
}

TEST(AttributeReader, Utf8PassesThrough) {
  const auto s = read("B-LOC\tw=Z\xC3\xBCrich\t\xE2\x82\xAC:0.25\n");
  EXPECT_EQ(s[0].attributes[0][0].name, "w=Z\xC3\xBCrich");
  EXPECT_EQ(s[0].attributes[0][1].name, "\xE2\x82\xAC");
  EXPECT_EQ(s[0].attributes[0][1].value, 0.25);
}

TEST(AttributeReader, BadValuesNameTheLine) {
  EXPECT_EQ(error_of("O\tf\nO\tf:abc\n"),
            "a.txt:2: invalid attribute value 'abc' in 'f:abc' (expected a finite number)");
  EXPECT_NE(error_of("O\tf:\n").find("a.txt:1: invalid attribute value ''"), std::string::npos);
  EXPECT_NE(error_of("O\tf:inf\n").find("a.txt:1: invalid attribute value"), std::string::npos);
  EXPECT_NE(error_of("O\tf:nan\n").find("a.txt:1: invalid attribute value"), std::string::npos);
  EXPECT_NE(error_of("O\tf:1e999\n").find("a.txt:1: invalid attribute value"),
            std::string::npos);
  EXPECT_NE(error_of("O\tf:1.5x\n").find("a.txt:1: invalid attribute value"), std::string::npos);
  EXPECT_EQ(error_of("O\t:2\n"), "a.txt:1: empty attribute name in ':2'");
}

TEST(AttributeReader, EmptyLabel) {
  EXPECT_EQ(error_of("O\tf\n\n\tf\n"), "a.txt:3: empty label");
}

TEST(AttributeReader, NulAndInvalidUtf8AreNotText) {
  EXPECT_EQ(error_of(std::string("O\tf\nO\t\0\n", 8)), "a.txt:2: not a text file (NUL byte)");
  EXPECT_EQ(error_of("O\t\x80\n"), "a.txt:1: not a text file (invalid UTF-8)");
}

TEST(AttributeReader, WeightLines) {
  const auto s = read("@weight:2.5\nA\tf\nB\tg\n\nA\tf\n@weight:0\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].weight, 2.5);
  EXPECT_EQ(s[0].labels.size(), 2u);
  EXPECT_EQ(s[0].first_line, 2u);
  EXPECT_EQ(s[1].weight, 0.0);
  EXPECT_EQ(s[1].labels.size(), 1u);
}

TEST(AttributeReader, BadWeights) {
  EXPECT_EQ(error_of("A\tf\n\n@weight:-1\nA\tf\n"),
            "a.txt:3: invalid sequence weight '-1' (expected a finite number >= 0)");
  EXPECT_EQ(error_of("@weight:x\nA\tf\n"),
            "a.txt:1: invalid sequence weight 'x' (expected a finite number >= 0)");
  EXPECT_NE(error_of("@weight:inf\nA\tf\n").find("a.txt:1: invalid sequence weight"),
            std::string::npos);
  EXPECT_EQ(error_of("@weight:1\n@weight:2\nA\tf\n"),
            "a.txt:2: second @weight line in one sequence");
  EXPECT_EQ(error_of("A\tf\n\n@weight:1\n\n"), "a.txt:3: @weight line without items");
}

TEST(AttributeReader, MissingFileIsAnIoError) {
  EXPECT_THROW(read_attributes_file("/nonexistent/septa/train.crfsuite"), IoError);
}

}  // namespace
}  // namespace septa::crf
