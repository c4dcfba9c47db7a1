#include "crf/io/shard_reader.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "crf/fixtures.h"
#include "septa/crf/corpus.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

bool blank_line(const std::string& text, std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i)
    if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\v' && text[i] != '\f')
      return false;
  return true;
}

// Brute force: q starts a sentence when it is 0, the end, or a line start after a blank line.
bool is_boundary(const std::string& text, std::size_t q) {
  if (q == 0 || q == text.size()) return true;
  if (text[q - 1] != '\n') return false;
  const std::size_t previous = q >= 2 ? text.rfind('\n', q - 2) : std::string::npos;
  const std::size_t begin = previous == std::string::npos ? 0 : previous + 1;
  return blank_line(text, begin, q - 1);
}

// Sentences of 1-4 tokens with 1-3 blank lines between them (some with spaces or CR), so the
// boundaries fall at irregular offsets.
std::string random_corpus(std::mt19937& rng, std::size_t sentences, std::size_t word_length) {
  std::string text;
  for (std::size_t n = 0; n < sentences; ++n) {
    const int tokens = 1 + static_cast<int>(rng() % 4);
    for (int t = 0; t < tokens; ++t) {
      text += std::string(1 + rng() % word_length, static_cast<char>('a' + rng() % 26));
      text += " X " + std::string(rng() % 2 ? "B" : "I") + (rng() % 5 == 0 ? "\r\n" : "\n");
    }
    const int blanks = 1 + static_cast<int>(rng() % 3);
    for (int b = 0; b < blanks; ++b) text += rng() % 4 == 0 ? " \t\n" : "\n";
  }
  if (rng() % 2) text.pop_back();  // sometimes no final newline
  return text;
}

TEST(ShardReader, SentenceStartAtEveryOffsetMatchesBruteForce) {
  std::mt19937 rng(7);
  std::vector<std::string> texts = {"", "\n", "a B\n", "a B\n\nc D\n", "\n\n\na B\n \n\nc D",
                                    "a B\r\n\r\nc D\r\n"};
  for (int i = 0; i < 20; ++i) texts.push_back(random_corpus(rng, 12, 6));
  // Lines longer than the reader's 64 KiB chunks, backwards and forwards.
  texts.push_back(std::string(70000, 'x') + " B\n" + std::string(70000, ' ') + "\ny B\n");
  for (const std::string& text : texts) {
    std::istringstream in(text);
    const std::size_t size = text.size();
    // Every offset of the small texts; of the long one, a stride and every offset near a newline.
    std::vector<std::size_t> offsets;
    for (std::size_t offset = 0; offset <= size; ++offset)
      if (size < 1000 || offset % 1009 == 0 ||
          text.find('\n', offset >= 3 ? offset - 3 : 0) <= offset + 3)
        offsets.push_back(offset);
    for (std::size_t offset : offsets) {
      const uint64_t p = sentence_start_at_or_after(in, size, offset);
      ASSERT_GE(p, offset);
      ASSERT_LE(p, size);
      ASSERT_TRUE(is_boundary(text, p)) << "offset " << offset << " gave " << p;
      // Checking every position in a 140 KB text would be quadratic: spot check the gap.
      for (std::size_t q = offset; q < p && q < offset + 300; ++q)
        ASSERT_FALSE(is_boundary(text, q)) << "offset " << offset << " skipped " << q;
    }
  }
}

// Every rank count 1..4 and block count: the ranks' sentences, concatenated in rank order, are
// the sentences of the whole file (each exactly once, same line numbers), whatever the offset
// of the sentence boundaries relative to the block cuts (a prefix of 0..47 bytes moves them).
TEST(ShardReader, EveryRankCountReadsEverySentenceOnce) {
  testing::TempDir dir;
  std::mt19937 rng(11);
  const std::string body = random_corpus(rng, 30, 5);
  for (std::size_t prefix = 0; prefix < 48; ++prefix) {
    const std::string text = "w" + std::string(prefix, 'p') + " X B\n\n" + body;
    const std::string path = dir.file("train.txt");
    testing::write_text(path, text);
    std::istringstream whole_in(text);
    const std::vector<ColumnSentence> whole = read_columns(whole_in, path);
    for (std::size_t blocks : {1u, 3u, 16u}) {
      for (int ranks = 1; ranks <= 4; ++ranks) {
        std::vector<ColumnSentence> joined;
        std::size_t line = 1, next_block = 0;
        for (int r = 0; r < ranks; ++r) {
          std::size_t first = 0, end = 0;
          rank_blocks(r, ranks, blocks, first, end);
          ASSERT_EQ(first, next_block);
          next_block = end;
          const RawShard raw = read_raw_shard(path, first, end, blocks);
          const ColumnShard shard = parse_column_shard(raw, path, first, blocks, line);
          line += raw.newlines;
          ASSERT_EQ(shard.block_bounds.size(), end - first + 1);
          ASSERT_EQ(shard.block_bounds.back(), shard.sentences.size());
          for (const ColumnSentence& s : shard.sentences) joined.push_back(s);
        }
        ASSERT_EQ(next_block, blocks);
        ASSERT_EQ(joined.size(), whole.size()) << "prefix " << prefix << " ranks " << ranks;
        for (std::size_t n = 0; n < whole.size(); ++n) {
          EXPECT_EQ(joined[n].columns, whole[n].columns);
          EXPECT_EQ(joined[n].first_line, whole[n].first_line);
        }
      }
    }
  }
}

TEST(ShardReader, ErrorsNameTheFileLineOfTheWholeFile) {
  testing::TempDir dir;
  std::string text;
  for (int n = 0; n < 40; ++n) text += "a X B\nb Y I\n\n";
  text += "bad\n\n";  // line 121: one column where three are expected
  for (int n = 0; n < 40; ++n) text += "a X B\n\n";
  const std::string path = dir.file("train.txt");
  testing::write_text(path, text);
  std::size_t line = 1;
  std::string message;
  for (int r = 0; r < 2; ++r) {
    std::size_t first = 0, end = 0;
    rank_blocks(r, 2, 16, first, end);
    const RawShard raw = read_raw_shard(path, first, end, 16);
    try {
      parse_column_shard(raw, path, first, 16, line);
    } catch (const FormatError& e) {
      message = e.what();
    }
    line += raw.newlines;
  }
  EXPECT_NE(message.find("train.txt:121: expected 3 columns, found 1"), std::string::npos)
      << message;
}

}  // namespace
// The blocks parsed on 1, 2, 3 and 8 threads: the same sentences, line numbers and block
// bounds; with bad lines in two blocks, every thread count reports the earlier one (fails when
// the joined blocks are out of order or a later block's error wins).
TEST(ShardReader, ParallelParseMatchesOneThread) {
  testing::TempDir dir;
  std::mt19937 rng(5);
  const std::string text = random_corpus(rng, 200, 7);
  const std::string path = dir.file("train.txt");
  testing::write_text(path, text);
  const RawShard raw = read_raw_shard(path, 0, 16, 16);
  const ColumnShard one = parse_column_shard(raw, path, 0, 16, 1, kDefaultMaxLineBytes, 1);
  ASSERT_GT(one.sentences.size(), 100u);
  for (int threads : {2, 3, 8}) {
    const ColumnShard many = parse_column_shard(raw, path, 0, 16, 1, kDefaultMaxLineBytes, threads);
    EXPECT_EQ(many.block_bounds, one.block_bounds) << threads;
    ASSERT_EQ(many.sentences.size(), one.sentences.size()) << threads;
    for (std::size_t n = 0; n < one.sentences.size(); ++n) {
      EXPECT_EQ(many.sentences[n].columns, one.sentences[n].columns);
      EXPECT_EQ(many.sentences[n].first_line, one.sentences[n].first_line);
    }
  }
  std::string bad;
  for (int n = 0; n < 60; ++n) bad += n == 20 || n == 50 ? "a X B\nb Y\n\n" : "a X B\nb Y I\n\n";
  testing::write_text(path, bad);  // lines 62 and 152: two columns where three are expected
  const RawShard bad_raw = read_raw_shard(path, 0, 16, 16);
  for (int threads : {1, 2, 3, 8}) {
    std::string message;
    try {
      parse_column_shard(bad_raw, path, 0, 16, 1, kDefaultMaxLineBytes, threads);
    } catch (const FormatError& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("train.txt:62: expected 3 columns, found 2"), std::string::npos)
        << threads << ": " << message;
  }
}

}  // namespace septa::crf
