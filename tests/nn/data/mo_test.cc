#include "nn/data/mo.h"

#include <gtest/gtest.h>

#include <string>

#include "septa/error.h"

namespace septa::nn {
namespace {

// A catalog written byte by byte (not with write_mo): 2 strings, big-endian, revision 0:
// the header and "Open" -> "Öffnen".
std::string hand_made_big_endian() {
  std::string f;
  auto u32 = [&f](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) f += static_cast<char>((v >> s) & 0xff);
  };
  u32(0x950412de);  // magic
  u32(0);           // revision
  u32(2);           // N
  u32(28);          // O
  u32(44);          // T
  u32(0);           // hash size
  u32(60);          // hash offset
  // originals at 28: "" at 60 (len 0), "Open" at 61 (len 4)
  u32(0); u32(60);
  u32(4); u32(61);
  // translations at 44: header at 66 (len 6), "Öffnen" at 73 (len 7 bytes in UTF-8)
  u32(6); u32(66);
  u32(7); u32(73);
  f += std::string("\0", 1);
  f += std::string("Open\0", 5);
  f += std::string("hdr: x\0", 7);
  f += std::string("\xc3\x96" "ffnen\0", 8);
  return f;
}

TEST(MoTest, ReadsAHandMadeBigEndianCatalog) {
  const std::string bytes = hand_made_big_endian();
  ASSERT_EQ(bytes.size(), 81u);
  const MoCatalog catalog = parse_mo(bytes, "be.mo");
  EXPECT_TRUE(catalog.big_endian);
  EXPECT_EQ(catalog.header, "hdr: x");
  ASSERT_EQ(catalog.entries.size(), 1u);
  EXPECT_EQ(catalog.entries[0].msgid, "Open");
  EXPECT_EQ(catalog.entries[0].context, "");
  ASSERT_EQ(catalog.entries[0].msgstr.size(), 1u);
  EXPECT_EQ(catalog.entries[0].msgstr[0], "\xc3\x96" "ffnen");
}

TEST(MoTest, ReadsAHandMadeLittleEndianCatalog) {
  // The same file with every 32-bit field byte-swapped.
  std::string bytes = hand_made_big_endian();
  for (size_t i = 0; i < 60; i += 4) std::swap(bytes[i], bytes[i + 3]), std::swap(bytes[i + 1], bytes[i + 2]);
  const MoCatalog catalog = parse_mo(bytes, "le.mo");
  EXPECT_FALSE(catalog.big_endian);
  ASSERT_EQ(catalog.entries.size(), 1u);
  EXPECT_EQ(catalog.entries[0].msgstr[0], "\xc3\x96" "ffnen");
}

std::vector<MoEntry> sample_entries() {
  return {
      {"", "_Open", "", {"Ö_ffnen"}},
      {"menu", "File", "", {"Datei"}},          // a context
      {"", "%d file", "%d files", {"%d Datei", "%d Dateien"}},  // a plural entry
      {"verb", "Print %s", "Print %s (%d)", {"%s drucken", "", "third"}},  // context and plural
  };
}

TEST(MoTest, RoundTripsContextsAndPluralsInBothByteOrders) {
  for (bool big : {false, true}) {
    const auto entries = sample_entries();
    const MoCatalog c = parse_mo(write_mo(entries, big, "Language: de\n"), "x.mo");
    EXPECT_EQ(c.big_endian, big);
    EXPECT_EQ(c.header, "Language: de\n");
    ASSERT_EQ(c.entries.size(), entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      EXPECT_EQ(c.entries[i].context, entries[i].context) << i;
      EXPECT_EQ(c.entries[i].msgid, entries[i].msgid) << i;
      EXPECT_EQ(c.entries[i].msgid_plural, entries[i].msgid_plural) << i;
      EXPECT_EQ(c.entries[i].msgstr, entries[i].msgstr) << i;
    }
  }
}

// `msgctxt ""` is a context: the original string starts with the separator. Found by mo_fuzz:
// written back without it, a msgid holding \x04 was split into another context and msgid.
TEST(MoTest, EmptyContextIsKeptApartFromNoContext) {
  MoEntry empty_context{"", "a\x04" "b", "", {"x"}};
  empty_context.has_context = true;
  const std::vector<MoEntry> entries = {empty_context, {"", "a", "", {"y"}}};
  for (bool big : {false, true}) {
    const MoCatalog c = parse_mo(write_mo(entries, big), "x.mo");
    ASSERT_EQ(c.entries.size(), 2u);
    EXPECT_TRUE(c.entries[0].has_context);
    EXPECT_EQ(c.entries[0].context, "");
    EXPECT_EQ(c.entries[0].msgid, "a\x04" "b");
    EXPECT_FALSE(c.entries[1].has_context);
    EXPECT_EQ(c.entries[1].msgid, "a");
  }
}

void expect_format_error(const std::string& bytes, const std::string& needle) {
  try {
    parse_mo(bytes, "bad.mo");
    FAIL() << "no error for " << needle;
  } catch (const FormatError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("bad.mo: offset ", 0), 0u) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(MoTest, RejectsCorruptFilesNamingFileAndOffset) {
  const std::string good = hand_made_big_endian();
  std::string bad_magic = good;
  bad_magic[0] = 0x12;
  expect_format_error(bad_magic, "bad magic");
  std::string revision = good;
  revision[5] = 2;  // major revision 2
  expect_format_error(revision, "offset 4: unknown major revision 2");
  std::string huge_count = good;
  huge_count[8] = 0x7f;
  expect_format_error(huge_count, "offset 12: original-string table");
  std::string outside = good;
  outside[59] = static_cast<char>(200);  // translation 1 now at offset 200
  expect_format_error(outside, "offset 52: string 1 [200, 207] lies outside the file");
  std::string no_nul = good;
  no_nul[80] = 'x';
  expect_format_error(no_nul, "offset 80: string 1 lacks its terminating NUL");
  expect_format_error("", "offset 0: truncated");
}

TEST(MoTest, EveryTruncationIsRejected) {
  for (bool big : {false, true}) {
    const std::string bytes = write_mo(sample_entries(), big);
    for (size_t n = 0; n < bytes.size(); ++n)
      EXPECT_THROW(parse_mo(bytes.substr(0, n), "t.mo"), FormatError) << n;
  }
}

TEST(MoTest, MissingFileIsAnIoError) { EXPECT_THROW(read_mo("/nonexistent/x.mo"), IoError); }

}  // namespace
}  // namespace septa::nn
