// CRC-32: the PCLMULQDQ folding path and the portable path against zlib's crc32, on every
// length up to 600 bytes at several alignments and initial values, chained, and on known values.
#include "safetensors/crc32.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <random>
#include <vector>

namespace septa::safetensors {
namespace {

std::uint32_t zlib_crc(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  return static_cast<std::uint32_t>(::crc32_z(crc, p, n));
}

class Crc32 : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { previous_ = set_crc32_simd(GetParam()); }
  void TearDown() override { set_crc32_simd(previous_); }
  bool previous_ = true;
};

TEST_P(Crc32, KnownValues) {
  EXPECT_EQ(crc32(0, nullptr, 0), 0u);
  EXPECT_EQ(crc32(0, "123456789", 9), 0xCBF43926u);  // the CRC-32 check value
  const std::vector<unsigned char> zeros(4096, 0);
  EXPECT_EQ(crc32(0, zeros.data(), zeros.size()), zlib_crc(0, zeros.data(), zeros.size()));
  const std::vector<unsigned char> ones(1000, 0xFF);
  EXPECT_EQ(crc32(0, ones.data(), ones.size()), zlib_crc(0, ones.data(), ones.size()));
}

TEST_P(Crc32, MatchesZlibOnEveryLengthAlignmentAndSeed) {
  std::mt19937 rng(13);
  std::vector<unsigned char> bytes(700);
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  for (std::size_t n = 0; n <= 600; ++n)
    for (std::size_t offset = 0; offset < 4; ++offset) {
      const std::uint32_t init = n % 3 == 0 ? 0u : static_cast<std::uint32_t>(rng());
      ASSERT_EQ(crc32(init, bytes.data() + offset, n), zlib_crc(init, bytes.data() + offset, n))
          << "n = " << n << ", offset = " << offset << ", initial " << init;
    }
}

TEST_P(Crc32, LargeBuffersAndChaining) {
  std::mt19937 rng(7);
  std::vector<unsigned char> bytes((1u << 20) + 77);
  for (auto& b : bytes) b = static_cast<unsigned char>(rng());
  const std::uint32_t whole = crc32(0, bytes.data(), bytes.size());
  EXPECT_EQ(whole, zlib_crc(0, bytes.data(), bytes.size()));
  for (const std::size_t cut : {1u, 63u, 64u, 65u, 4096u, 500001u}) {
    const std::uint32_t head = crc32(0, bytes.data(), cut);
    EXPECT_EQ(crc32(head, bytes.data() + cut, bytes.size() - cut), whole) << "cut at " << cut;
  }
  bytes[123456] ^= 0x10;  // a flipped bit changes it
  EXPECT_NE(crc32(0, bytes.data(), bytes.size()), whole);
}

INSTANTIATE_TEST_SUITE_P(Paths, Crc32, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Simd" : "Portable"; });

}  // namespace
}  // namespace septa::safetensors
