#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "crf/test_data.h"
#include "septa/crf/corpus.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

std::vector<ColumnSentence> read(const std::string& text, std::size_t min_columns = 1) {
  std::istringstream in(text);
  return read_columns(in, "t.txt", min_columns);
}

// The sentences' echo (original lines and document markers), checked to match them in number.
std::vector<ColumnEcho> echo_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<ColumnEcho> echo;
  const auto sentences = read_columns(in, "t.txt", 1, 1, kDefaultMaxLineBytes, &echo);
  EXPECT_EQ(echo.size(), sentences.size());
  for (std::size_t n = 0; n < std::min(echo.size(), sentences.size()); ++n)
    EXPECT_EQ(echo[n].lines.size(), sentences[n].columns.size());
  return echo;
}

std::string error_of(const std::string& text, std::size_t min_columns = 1) {
  try {
    read(text, min_columns);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "no error";
}

using Row = std::vector<std::string>;

TEST(ColumnReader, SentencesColumnsLinesAndLineNumbers) {
  const std::string text = "He PRP B-NP\nreckons\tVBZ  B-VP\n\n\n  \nThe DT B-NP\n";
  const auto s = read(text);
  ASSERT_EQ(s.size(), 2u);
  ASSERT_EQ(s[0].columns.size(), 2u);
  EXPECT_EQ(s[0].columns[0], (Row{"He", "PRP", "B-NP"}));
  EXPECT_EQ(s[0].columns[1], (Row{"reckons", "VBZ", "B-VP"}));
  const auto echo = echo_of(text);
  ASSERT_EQ(echo.size(), 2u);
  EXPECT_EQ(echo[0].lines[1], "reckons\tVBZ  B-VP");  // the original white space
  EXPECT_EQ(echo[1].lines[0], "The DT B-NP");
  EXPECT_TRUE(echo[0].markers_before.empty());
  EXPECT_EQ(s[0].first_line, 1u);
  EXPECT_EQ(s[1].columns[0], (Row{"The", "DT", "B-NP"}));
  EXPECT_EQ(s[1].first_line, 6u);
}

TEST(ColumnReader, CrlfAndMissingFinalNewline) {
  const auto s = read("a X O\r\nb Y O\r\n\r\nc Z B-NP");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].columns[1], (Row{"b", "Y", "O"}));
  EXPECT_EQ(echo_of("a X O\r\nb Y O\r\n\r\nc Z B-NP").at(0).lines.at(0), "a X O");
  ASSERT_EQ(s[1].columns.size(), 1u);
  EXPECT_EQ(s[1].columns[0], (Row{"c", "Z", "B-NP"}));
  EXPECT_EQ(s[1].first_line, 4u);
}

TEST(ColumnReader, DocstartLinesAreSkipped) {
  const std::string text =
      "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n"
      "-DOCSTART-\t-X- O O\n\nPeter NNP I-NP I-PER\n\n-DOCSTART- -X- O O\n";
  const auto s = read(text);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].columns.size(), 2u);
  EXPECT_EQ(s[0].first_line, 3u);
  EXPECT_EQ(s[1].columns[0][0], "Peter");
  EXPECT_EQ(s[1].first_line, 8u);
  // Each marker is echoed (as written) before the sentence that follows it; a final one with
  // no sentence after it is dropped.
  const auto echo = echo_of(text);
  ASSERT_EQ(echo.size(), 2u);
  EXPECT_EQ(echo[0].markers_before, (Row{"-DOCSTART- -X- O O"}));
  EXPECT_EQ(echo[1].markers_before, (Row{"-DOCSTART-\t-X- O O"}));
}

TEST(ColumnReader, DocstartInsideASentenceEndsIt) {
  const auto s = read("a X O\n-DOCSTART- O\nb Y O\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].columns[0][0], "b");
}

TEST(ColumnReader, Utf8PassesThroughUntouched) {
  const std::string text = "Z\xC3\xBCrich NE B-LOC\n\xE2\x82\xAC\xF0\x9F\x98\x80 SYM O\n";
  const auto s = read("\xEF\xBB\xBF" + text);  // a leading BOM is dropped
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].columns[0][0], "Z\xC3\xBCrich");
  EXPECT_EQ(s[0].columns[1][0], "\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(echo_of("\xEF\xBB\xBF" + text).at(0).lines.at(0), "Z\xC3\xBCrich NE B-LOC");
}

TEST(ColumnReader, RaggedColumnsNameFileAndLine) {
  EXPECT_EQ(error_of("a X O\nb Y O\n\nc Z O\nd O\n"), "t.txt:5: expected 3 columns, found 2");
  EXPECT_EQ(error_of("a X O\nb Y O Q\n"), "t.txt:2: expected 3 columns, found 4");
  // the first token line fixes the count, even across sentences and after -DOCSTART-
  EXPECT_EQ(error_of("-DOCSTART- -X- -X- O\n\na O\n\nb X O\n"),
            "t.txt:5: expected 2 columns, found 3");
}

TEST(ColumnReader, TooFewColumns) {
  EXPECT_EQ(error_of("a O\n", 3), "t.txt:1: expected at least 3 columns, found 2");
  EXPECT_EQ(read("a X O\n", 3).size(), 1u);
}

TEST(ColumnReader, NulAndInvalidUtf8AreNotText) {
  EXPECT_EQ(error_of(std::string("a X O\nb \0 O\n", 12)), "t.txt:2: not a text file (NUL byte)");
  EXPECT_EQ(error_of("a X O\n\nb \xFF\xFE O\n"), "t.txt:3: not a text file (invalid UTF-8)");
}

TEST(ColumnReader, EmptyInputGivesNoSentences) {
  EXPECT_TRUE(read("").empty());
  EXPECT_TRUE(read("\n\n  \n").empty());
}

TEST(ColumnReader, MissingFileIsAnIoError) {
  EXPECT_THROW(read_columns_file("/nonexistent/septa/train.txt"), IoError);
}

TEST(ColumnReader, FileErrorsNameThePath) {
  const std::string path = testing::TempDir() + "septa_ragged.txt";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("a X O\nb O\n", f);
    std::fclose(f);
  }
  try {
    read_columns_file(path);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_EQ(std::string(e.what()), path + ":2: expected 3 columns, found 2");
  }
  std::remove(path.c_str());
}

TEST(ColumnReader, Conll2000TrainCountsAndSpeed) {
  const std::string path = test::data_file("conll2000/train.txt");
  if (path.empty()) GTEST_SKIP() << "CoNLL-2000 data not found (set SEPTA_DATA)";
  const auto start = std::chrono::steady_clock::now();
  const auto sentences = read_columns_file(path, 3);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::size_t tokens = 0;
  for (const auto& s : sentences) tokens += s.columns.size();
  EXPECT_EQ(sentences.size(), 8936u);
  EXPECT_EQ(tokens, 211727u);
  EXPECT_EQ(sentences[0].columns[0], (Row{"Confidence", "NN", "B-NP"}));
  std::printf("read %s in %.3f s\n", path.c_str(), seconds);
  RecordProperty("read_seconds", std::to_string(seconds));
}

TEST(ItemPlace, NamesFileLinesOrInMemoryPositions) {
  std::istringstream in("a B\n\nb C\nc D\n");
  const auto sentences = read_columns(in, "test.txt");
  ASSERT_EQ(sentences.size(), 2u);
  EXPECT_EQ(sentences[1].source, "test.txt");
  EXPECT_EQ(item_place(sentences[0], 0), "test.txt:1");
  EXPECT_EQ(item_place(sentences[1], 1), "test.txt:4");
  ColumnSentence in_memory;
  in_memory.columns = {{"a"}, {"b"}};
  in_memory.index = 2;
  EXPECT_EQ(item_place(in_memory, 1), "sequence 2, item 1");
  in_memory.source = "X";
  EXPECT_EQ(item_place(in_memory, 1), "X[2][1]");
  std::istringstream attributes("A\tx\n\nB\ty\nC\tz\n");
  const auto sequences = read_attributes(attributes, "a.txt");
  ASSERT_EQ(sequences.size(), 2u);
  EXPECT_EQ(item_place(sequences[1], 1), "a.txt:4");
}

}  // namespace
}  // namespace septa::crf
