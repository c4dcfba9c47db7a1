#include "nn/methods/mt/clean.h"

#include <gtest/gtest.h>

namespace septa::nn::mt {
namespace {

TEST(CleanTest, Accelerators) {
  EXPECT_EQ(clean_message("_Open"), "Open");
  EXPECT_EQ(clean_message("Re_load"), "Reload");
  EXPECT_EQ(clean_message("&Save As..."), "Save As...");
  EXPECT_EQ(clean_message("~Insert"), "Insert");
  EXPECT_EQ(clean_message("Tom && Jerry"), "Tom & Jerry");
  EXPECT_EQ(clean_message("\xe9\x96\x8b\xe3\x81\x8f(_O)"), "\xe9\x96\x8b\xe3\x81\x8f");  // 開く(_O)
  EXPECT_EQ(clean_message("\xe4\xbf\x9d\xe5\xad\x98(&S)"), "\xe4\xbf\x9d\xe5\xad\x98");  // 保存(&S)
  EXPECT_EQ(clean_message("_\xc3\x96" "ffnen"), "\xc3\x96" "ffnen");  // _Öffnen
  EXPECT_EQ(clean_message("a _ b"), "a _ b");  // no key after the mark
}

TEST(CleanTest, FormatSpecifiers) {
  EXPECT_EQ(clean_message("Cannot open %s: %d errors"), "Cannot open : errors");
  EXPECT_EQ(clean_message("%1$s of %2$s"), "of");
  EXPECT_EQ(clean_message("%-5.2f%% done"), "% done");
  EXPECT_EQ(clean_message("Read %lu bytes"), "Read bytes");
  EXPECT_EQ(clean_message("File %(name)s exists"), "File exists");
  EXPECT_EQ(clean_message("Copy %1 to %2"), "Copy to");
  EXPECT_EQ(clean_message("Hello {0}, {name} and {}"), "Hello , and");
  EXPECT_EQ(clean_message("100%"), "");  // no letter left
}

TEST(CleanTest, StarWidthAndPrecision) {  // '*' takes the width or precision from an argument
  EXPECT_EQ(clean_message("%3$.*2$s ago"), "ago");           // POSIX positional precision
  EXPECT_EQ(clean_message("%1$*2$d items"), "items");        // positional width
  EXPECT_EQ(clean_message("%*d of %-*s"), "of");             // plain '*' width
  EXPECT_EQ(clean_message("%.*s bytes"), "bytes");           // plain '*' precision
  EXPECT_EQ(clean_message("%2$*1$.*3$f rate"), "rate");      // both, positional
  EXPECT_EQ(clean_message("%*3 stars"), "%*3 stars");        // no conversion: not a specifier
}

TEST(CleanTest, MarkupAndWhitespace) {
  EXPECT_EQ(clean_message("<b>Bold</b> text"), "Bold text");
  EXPECT_EQ(clean_message("<a href=\"x\">link</a>"), "link");
  EXPECT_EQ(clean_message("a &lt; b &amp; c"), "a < b & c");
  EXPECT_EQ(clean_message("x < y > z"), "x < y > z");  // not tags
  EXPECT_EQ(clean_message("  line one\nline\ttwo  "), "line one line two");
  EXPECT_EQ(clean_message("%s"), "");
  EXPECT_EQ(clean_message(std::string(300, 'a')), "");  // too long
  EXPECT_EQ(clean_message(std::string(300, 'a'), 400), std::string(300, 'a'));
}

}  // namespace
}  // namespace septa::nn::mt
