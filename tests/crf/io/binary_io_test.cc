#include "crf/io/binary_io.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
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
// split anywhere; in the last splits up to 12 words, so that pieces also hold several whole
// 4-word blocks, at any lane) equals checksum64 of the whole, for every length 0..200.
TEST(BinaryIo, ChecksumInPiecesEqualsTheWholeChecksum) {
  std::mt19937 rng(3);
  for (std::size_t n = 0; n <= 200; ++n) {
    const std::string bytes = random_bytes(n, static_cast<uint32_t>(n) + 1);
    for (int split = 0; split < 5; ++split) {
      Checksum64 sum;
      for (std::size_t at = 0; at < n;) {
        const std::size_t piece = std::min<std::size_t>(n - at, 1 + rng() % (split < 3 ? 37 : 97));
        sum.update(bytes.data() + at, piece);
        at += piece;
      }
      ASSERT_EQ(sum.value(), checksum64(bytes.data(), n)) << n << " bytes, split " << split;
    }
  }
}

// Vectors read back exactly from any byte offset (the model's fields are not aligned), empty
// ones included, and a length beyond the bytes is refused.
TEST(BinaryIo, VectorsReadBackFromUnalignedOffsets) {
  const std::vector<double> doubles = {0.1, -2.5e-300, 1e300, -0.0, 3.0};
  const std::vector<int32_t> ints = {7, -1, 2147483647};
  const std::vector<uint32_t> none;
  for (std::size_t shift = 0; shift < 9; ++shift) {
    ByteWriter out;
    for (std::size_t i = 0; i < shift; ++i) out.u8(static_cast<uint8_t>(i));
    out.vec(doubles);
    out.u8(9);
    out.vec(ints);
    out.vec(none);
    ByteReader in(out.bytes().data(), out.bytes().size(), "shifted");
    for (std::size_t i = 0; i < shift; ++i) ASSERT_EQ(in.u8(), i);
    const std::vector<double> d = in.vec<double>();
    ASSERT_EQ(d.size(), doubles.size());
    for (std::size_t i = 0; i < d.size(); ++i)
      EXPECT_EQ(std::memcmp(&d[i], &doubles[i], sizeof(double)), 0) << shift << " " << i;
    EXPECT_EQ(in.u8(), 9);
    EXPECT_EQ(in.vec<int32_t>(), ints);
    EXPECT_TRUE(in.vec<uint32_t>().empty());
    EXPECT_TRUE(in.at_end());
  }
  // A vector large enough for huge pages (advise_huge_pages), at an odd offset.
  std::vector<double> large(400000);
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<double>(i) * 0.5 - 7.0;
  ByteWriter big;
  big.u8(1);
  big.vec(large);
  ByteReader big_in(big.bytes().data(), big.bytes().size(), "large");
  EXPECT_EQ(big_in.u8(), 1);
  EXPECT_EQ(big_in.vec<double>(), large);
  EXPECT_TRUE(big_in.at_end());

  ByteWriter out;
  out.u64(3);
  out.f64(1.0);
  out.f64(2.0);
  ByteReader in(out.bytes().data(), out.bytes().size(), "short");
  EXPECT_THROW(in.vec<double>(), ModelError);
}

// finite_doubles copies blocks of 2,048 and checks each: a vector of every length around the
// block size reads back exactly (denormals, -0 and the largest finite values are finite), and
// one non-finite value anywhere (first, a block's last or first, the very last) is refused.
TEST(BinaryIo, FiniteDoublesReadBackAndRefuseANonFiniteValueInAnyBlock) {
  const double kBad[] = {std::numeric_limits<double>::quiet_NaN(),
                         std::numeric_limits<double>::infinity(),
                         -std::numeric_limits<double>::infinity()};
  for (const std::size_t n : {0, 1, 2047, 2048, 2049, 6000}) {
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i)
      v[i] = i % 4 == 0 ? std::numeric_limits<double>::max() * (i % 8 ? 1 : -1)
             : i % 4 == 1 ? std::numeric_limits<double>::denorm_min()
             : i % 4 == 2 ? -0.0 : static_cast<double>(i) * 0.25;
    ByteWriter out;
    out.u8(1);  // unaligned
    out.vec(v);
    ByteReader in(out.bytes().data(), out.bytes().size(), "finite");
    in.u8();
    const std::vector<double> got = in.finite_doubles();
    ASSERT_EQ(got.size(), n);
    if (n > 0) {
      EXPECT_EQ(std::memcmp(got.data(), v.data(), n * sizeof(double)), 0) << n;
    }
    for (const std::size_t at : {std::size_t{0}, std::size_t{2047}, std::size_t{2048}, n - 1}) {
      if (at >= n) continue;
      for (const double bad : kBad) {
        std::vector<double> w = v;
        w[at] = bad;
        ByteWriter o;
        o.vec(w);
        ByteReader r(o.bytes().data(), o.bytes().size(), "bad.model");
        try {
          r.finite_doubles();
          ADD_FAILURE() << "accepted " << bad << " at " << at << " of " << n;
        } catch (const ModelError& e) {
          EXPECT_NE(std::string(e.what()).find("bad.model: corrupt model: non-finite weight"),
                    std::string::npos)
              << e.what();
        }
      }
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
