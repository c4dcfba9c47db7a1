// The IDX reader on small generated files (plain and gzip) and on corrupt input.
#include "septa/nn/fashion_mnist.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <vector>

#include "septa/error.h"
#include "test_util.h"

namespace septa::nn {
namespace {

using Bytes = std::vector<unsigned char>;

Bytes idx_header(unsigned char type, const std::vector<uint32_t>& dims) {
  Bytes bytes = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back((d >> shift) & 0xff);
  return bytes;
}

Bytes idx_file(const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes bytes = idx_header(0x08, dims);
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(file);
}

// Two 28x28 images whose pixel i is (i + 7 * n) mod 256, labels {3, 9}.
Bytes image_bytes(int n) {
  Bytes data;
  for (int k = 0; k < n; ++k)
    for (int i = 0; i < 784; ++i) data.push_back(static_cast<unsigned char>((i + 7 * k) % 256));
  return data;
}

class IdxReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::temp_dir("idx"); }
  std::string dir_;
};

TEST_F(IdxReaderTest, ReadsPlainAndGzipIdentically) {
  const Bytes file = idx_file({2, 3}, {1, 2, 3, 250, 251, 252});
  write_plain(dir_ + "/a.idx", file);
  write_gzip(dir_ + "/a.idx.gz", file);
  for (const std::string name : {"/a.idx", "/a.idx.gz"}) {
    const IdxArray array = read_idx(dir_ + name);
    EXPECT_EQ(array.dims, (std::vector<int64_t>{2, 3}));
    ASSERT_EQ(array.data.sizes(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(array.data[0][2].item<int>(), 3);
    EXPECT_EQ(array.data[1][0].item<int>(), 250);
  }
}

TEST_F(IdxReaderTest, MissingFileIsIoError) {
  EXPECT_THROW(read_idx(dir_ + "/absent.idx"), IoError);
  EXPECT_THROW(load_fashion_mnist(dir_), IoError);
}

TEST_F(IdxReaderTest, CorruptHeadersAreFormatErrors) {
  Bytes bad_magic = idx_file({2}, {1, 2});
  bad_magic[0] = 1;
  write_plain(dir_ + "/magic", bad_magic);
  EXPECT_THROW(read_idx(dir_ + "/magic"), FormatError);

  Bytes float_type = idx_header(0x0D, {1});
  float_type.insert(float_type.end(), {0, 0, 0, 0});
  write_plain(dir_ + "/type", float_type);
  EXPECT_THROW(read_idx(dir_ + "/type"), FormatError);

  write_plain(dir_ + "/rank", idx_header(0x08, {}));
  EXPECT_THROW(read_idx(dir_ + "/rank"), FormatError);

  write_plain(dir_ + "/short_header", Bytes{0, 0, 8});
  EXPECT_THROW(read_idx(dir_ + "/short_header"), FormatError);
}

TEST_F(IdxReaderTest, TruncatedOrOverlongDataIsFormatError) {
  write_gzip(dir_ + "/short.gz", idx_file({4}, {1, 2, 3}));
  EXPECT_THROW(read_idx(dir_ + "/short.gz"), FormatError);
  write_plain(dir_ + "/long", idx_file({2}, {1, 2, 3}));
  EXPECT_THROW(read_idx(dir_ + "/long"), FormatError);
}

TEST_F(IdxReaderTest, CorruptGzipIsAnError) {
  write_gzip(dir_ + "/c.gz", idx_file({64}, Bytes(64, 5)));
  std::fstream file(dir_ + "/c.gz", std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(12);
  const char junk[8] = {'\x13', '\x37', '\x42', '\x99', '\x01', '\x02', '\x03', '\x04'};
  file.write(junk, sizeof junk);
  file.close();
  EXPECT_THROW(read_idx(dir_ + "/c.gz"), Error);
}

TEST_F(IdxReaderTest, LoadsAGeneratedFashionMnistDirectory) {
  for (const std::string split : {"train", "t10k"}) {
    write_gzip(dir_ + "/" + split + "-images-idx3-ubyte.gz", idx_file({2, 28, 28}, image_bytes(2)));
    write_gzip(dir_ + "/" + split + "-labels-idx1-ubyte.gz", idx_file({2}, {3, 9}));
  }
  const FashionMnist data = load_fashion_mnist(dir_);
  ASSERT_EQ(data.train.images.sizes(), (std::vector<int64_t>{2, 784}));
  EXPECT_EQ(data.test.labels[1].item<int64_t>(), 9);
  EXPECT_FLOAT_EQ(data.train.images[1][5].item<float>(), 12.0f / 255.0f);
  EXPECT_EQ(take_first(data.train, 1).size(), 1);
}

TEST_F(IdxReaderTest, DisagreeingImagesAndLabelsAreFormatErrors) {
  write_plain(dir_ + "/img", idx_file({2, 28, 28}, image_bytes(2)));
  write_plain(dir_ + "/lab3", idx_file({3}, {1, 2, 3}));
  write_plain(dir_ + "/lab_big", idx_file({2}, {1, 12}));
  write_plain(dir_ + "/img_small", idx_file({1, 2, 2}, {1, 2, 3, 4}));
  write_plain(dir_ + "/lab1", idx_file({1}, {1}));
  EXPECT_THROW(read_image_set(dir_ + "/img", dir_ + "/lab3"), FormatError);
  EXPECT_THROW(read_image_set(dir_ + "/img", dir_ + "/lab_big"), FormatError);
  EXPECT_THROW(read_image_set(dir_ + "/img_small", dir_ + "/lab1"), FormatError);
}

}  // namespace
}  // namespace septa::nn
