#include "crf/io/binary_io.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace septa::crf {
namespace {

std::string random_bytes(std::size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// Checksum64 fed in random pieces (1 byte to a few words, so that words and the 4 lanes are
// split anywhere) equals checksum64 of the whole, for every length 0..200.
TEST(BinaryIo, ChecksumInPiecesEqualsTheWholeChecksum) {
  std::mt19937 rng(3);
  for (std::size_t n = 0; n <= 200; ++n) {
    const std::string bytes = random_bytes(n, static_cast<uint32_t>(n) + 1);
    for (int split = 0; split < 5; ++split) {
      Checksum64 sum;
      for (std::size_t at = 0; at < n;) {
        const std::size_t piece = std::min<std::size_t>(n - at, 1 + rng() % 37);
        sum.update(bytes.data() + at, piece);
        at += piece;
      }
      ASSERT_EQ(sum.value(), checksum64(bytes.data(), n)) << n << " bytes, split " << split;
    }
  }
}

// A ByteWriter with a sink passes on exactly the bytes a plain one keeps, in order, whatever
// the chunk size (pieces larger than the chunk pass straight through), and holds at most a
// chunk.
TEST(BinaryIo, WriterWithASinkPassesOnTheBytesOfAPlainOne) {
  const auto write = [](ByteWriter& out) {
    out.u8(7);
    out.u32(0xdeadbeef);
    out.str("separate training");
    out.vec(std::vector<double>(1000, 0.25));
    out.strings({"a", "", std::string(300, 'x'), "bc"});
    out.f64(-1.5);
    out.vec(std::vector<int32_t>{1, 2, 3});
    out.u64(42);
  };
  ByteWriter plain;
  write(plain);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{8}, std::size_t{100}, std::size_t{5000},
                            std::size_t{1} << 20}) {
    std::string passed;
    std::size_t largest_pending = 0;
    ByteWriter streamed([&](const char* data, std::size_t n) { passed.append(data, n); }, chunk);
    write(streamed);
    largest_pending = streamed.bytes().size();
    streamed.flush();
    EXPECT_EQ(passed, plain.bytes()) << "chunk " << chunk;
    EXPECT_EQ(streamed.size(), plain.bytes().size());
    EXPECT_TRUE(streamed.bytes().empty());
    EXPECT_LT(largest_pending, chunk + 1);
  }
}

}  // namespace
}  // namespace septa::crf
