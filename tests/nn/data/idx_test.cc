// The torch-free IDX parser on buffers and files: plain and gzip, malformed and hostile headers.
#include "nn/data/idx.h"

#include <gtest/gtest.h>

#include <fstream>
#include <vector>

#include "septa/error.h"
#include "nn/test_util.h"

namespace septa::nn {
namespace {

using testing::Bytes;
using testing::idx_file;
using testing::idx_header;
using testing::write_gzip;
using testing::write_plain;

std::string_view view(const Bytes& bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// The FormatError message of parse_idx(bytes, label), or "" when it parses.
std::string parse_error(const Bytes& bytes, const std::string& label = "x.idx") {
  try {
    parse_idx(view(bytes), label);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

class IdxReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::temp_dir("idx"); }
  std::string dir_;
};

TEST_F(IdxReaderTest, ReadsPlainAndGzipFilesAndBuffersIdentically) {
  const Bytes file = idx_file({2, 3}, {1, 2, 3, 250, 251, 252});
  write_plain(dir_ + "/a.idx", file);
  write_gzip(dir_ + "/a.idx.gz", file);
  const std::string gz = testing::read_file(dir_ + "/a.idx.gz");
  for (const IdxArray& array : {read_idx(dir_ + "/a.idx"), read_idx(dir_ + "/a.idx.gz"),
                                parse_idx(view(file)), parse_idx(gz)}) {
    EXPECT_EQ(array.dims, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(array.data, (std::vector<uint8_t>{1, 2, 3, 250, 251, 252}));
  }
}

TEST_F(IdxReaderTest, MissingFileIsIoError) {
  EXPECT_THROW(read_idx(dir_ + "/absent.idx"), IoError);
}

TEST_F(IdxReaderTest, CorruptHeadersAreFormatErrorsNamingTheInput) {
  Bytes bad_magic = idx_file({2}, {1, 2});
  bad_magic[0] = 1;
  EXPECT_NE(parse_error(bad_magic).find("x.idx:0: not an IDX file"), std::string::npos);
  Bytes float_type = idx_header(0x0D, {1});
  float_type.insert(float_type.end(), {0, 0, 0, 0});
  EXPECT_NE(parse_error(float_type).find("element type 13"), std::string::npos);
  EXPECT_NE(parse_error(idx_header(0x08, {})).find("rank 0"), std::string::npos);
  EXPECT_NE(parse_error(Bytes{0, 0, 8}).find("truncated IDX header"), std::string::npos);
  EXPECT_NE(parse_error(Bytes{0, 0, 8, 2, 0, 0}).find("truncated IDX header"), std::string::npos);
}

TEST_F(IdxReaderTest, TruncatedOrOverlongDataIsFormatError) {
  EXPECT_NE(parse_error(idx_file({4}, {1, 2, 3})).find("truncated IDX data"), std::string::npos);
  EXPECT_NE(parse_error(idx_file({2}, {1, 2, 3})).find("1 trailing bytes"), std::string::npos);
  write_gzip(dir_ + "/short.gz", idx_file({4}, {1, 2, 3}));
  EXPECT_THROW(read_idx(dir_ + "/short.gz"), FormatError);
}

// Issue 15 finding 6: a 14-byte file whose header declares 4.2 GB must fail on the size check,
// not allocate; elements *= dim must not overflow.
TEST_F(IdxReaderTest, AHugeDeclaredArrayInATinyFileFailsWithoutAllocating) {
  const Bytes tiny = idx_file({65535, 65535}, {1, 2});  // 12-byte header + 2 bytes = 14 bytes
  ASSERT_EQ(tiny.size(), 14u);
  const std::string message = parse_error(tiny, "tiny.idx");
  EXPECT_NE(message.find("tiny.idx:0: truncated IDX data (the header declares 4294836225 bytes"),
            std::string::npos)
      << message;
  write_gzip(dir_ + "/tiny.gz", tiny);
  EXPECT_THROW(read_idx(dir_ + "/tiny.gz"), FormatError);
  // 2^32 * 2^32 * ... would overflow int64 when multiplied blindly.
  const Bytes overflow = idx_header(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu, 3});
  EXPECT_NE(parse_error(overflow).find("IDX dimensions too large"), std::string::npos);
  // A zero dimension is an empty array, not a division by zero.
  EXPECT_EQ(parse_idx(view(idx_header(0x08, {0, 0xffffffffu}))).data.size(), 0u);
}

TEST_F(IdxReaderTest, AGzipBombStopsAtTheDeclaredSize) {
  Bytes big = idx_file({16}, Bytes(16, 1));
  big.resize(big.size() + (size_t{8} << 20), 0);  // 8 MiB of trailing zeros compress to ~8 KiB
  write_gzip(dir_ + "/bomb.gz", big);
  const std::string gz = testing::read_file(dir_ + "/bomb.gz");
  EXPECT_LT(gz.size(), size_t{100'000});
  try {
    parse_idx(gz, "bomb.gz");
    FAIL() << "trailing data accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bomb.gz:0:"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("trailing bytes"), std::string::npos);
  }
}

TEST_F(IdxReaderTest, CorruptOrTruncatedGzipIsFormatError) {
  write_gzip(dir_ + "/c.gz", idx_file({64}, Bytes(64, 5)));
  std::string gz = testing::read_file(dir_ + "/c.gz");
  std::string corrupt = gz;
  for (size_t i = 12; i < 20; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  EXPECT_THROW(parse_idx(corrupt, "c.gz"), FormatError);
  EXPECT_THROW(parse_idx(gz.substr(0, gz.size() / 2), "c.gz"), FormatError);
}

}  // namespace
}  // namespace septa::nn
