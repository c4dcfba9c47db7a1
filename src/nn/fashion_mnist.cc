// IDX reader and Fashion-MNIST loader.
//
// IDX format (LeCun, http://yann.lecun.com/exdb/mnist/): a big-endian header
//   bytes 0-1 zero, byte 2 the element type (0x08 = unsigned byte), byte 3 the rank R,
//   then R big-endian uint32 dimensions, then prod(dims) elements in row-major order.
// zlib's gzread reads gzip and plain files alike, so both forms are accepted.
#include "septa/nn/fashion_mnist.h"

#include <zlib.h>

#include <sys/stat.h>

#include <array>
#include <cstring>
#include <memory>

#include "septa/error.h"

namespace septa::nn {
namespace {

constexpr int kMaxRank = 4;
constexpr int64_t kMaxElements = int64_t{1} << 32;

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

bool file_exists(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

// Reads exactly `size` bytes or throws FormatError ("truncated") / IoError (read failure).
void read_exact(gzFile_s* file, const std::string& path, void* buffer, int64_t size,
                const char* what) {
  auto* out = static_cast<unsigned char*>(buffer);
  int64_t done = 0;
  while (done < size) {
    const int64_t chunk = std::min<int64_t>(size - done, int64_t{1} << 30);
    const int got = gzread(file, out + done, static_cast<unsigned>(chunk));
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      if (code == Z_DATA_ERROR) throw FormatError(path + ":0: corrupt gzip data in " + what);
      throw IoError(path + ": read error: " + (message ? message : "unknown"));
    }
    if (got == 0)
      throw FormatError(path + ":0: truncated " + what + " (" + std::to_string(done) + " of " +
                        std::to_string(size) + " bytes)");
    done += got;
  }
}

uint32_t big_endian_u32(const unsigned char* bytes) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
         uint32_t{bytes[3]};
}

// The path of `name` in `dir`, preferring the gzip form; IoError when neither exists.
std::string find_file(const std::string& dir, const std::string& name) {
  const std::string base = dir + "/" + name;
  if (file_exists(base + ".gz")) return base + ".gz";
  if (file_exists(base)) return base;
  throw IoError(base + ".gz: no such file (is the dataset-fashion-mnist package installed? "
                "use --data DIR)");
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  if (!file_exists(path)) throw IoError(path + ": no such file");
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) throw IoError(path + ": cannot open");
  std::array<unsigned char, 4> magic{};
  read_exact(file.get(), path, magic.data(), 4, "header");
  if (magic[0] != 0 || magic[1] != 0) throw FormatError(path + ":0: not an IDX file (bad magic)");
  if (magic[2] != 0x08)
    throw FormatError(path + ":0: IDX element type " + std::to_string(magic[2]) +
                      " is not unsigned byte (8)");
  const int rank = magic[3];
  if (rank < 1 || rank > kMaxRank)
    throw FormatError(path + ":0: IDX rank " + std::to_string(rank) + " outside [1, 4]");
  IdxArray array;
  int64_t elements = 1;
  for (int d = 0; d < rank; ++d) {
    std::array<unsigned char, 4> bytes{};
    read_exact(file.get(), path, bytes.data(), 4, "header");
    const int64_t dim = big_endian_u32(bytes.data());
    elements *= std::max<int64_t>(dim, 1);
    if (elements > kMaxElements) throw FormatError(path + ":0: IDX dimensions too large");
    array.dims.push_back(dim);
  }
  array.data = torch::empty(array.dims, torch::kUInt8);
  read_exact(file.get(), path, array.data.data_ptr<uint8_t>(), array.data.numel(), "data");
  unsigned char extra = 0;
  if (gzread(file.get(), &extra, 1) > 0)
    throw FormatError(path + ":0: trailing bytes after the IDX data");
  return array;
}

ImageSet read_image_set(const std::string& images_path, const std::string& labels_path) {
  const IdxArray images = read_idx(images_path);
  const IdxArray labels = read_idx(labels_path);
  if (images.dims.size() != 3 || images.dims[1] != 28 || images.dims[2] != 28)
    throw FormatError(images_path + ":0: expected images of shape [N][28][28]");
  if (labels.dims.size() != 1) throw FormatError(labels_path + ":0: expected labels of shape [N]");
  if (labels.dims[0] != images.dims[0])
    throw FormatError(labels_path + ":0: " + std::to_string(labels.dims[0]) + " labels for " +
                      std::to_string(images.dims[0]) + " images");
  if (labels.dims[0] > 0 && labels.data.max().item<int64_t>() > 9)
    throw FormatError(labels_path + ":0: label outside [0, 9]");
  ImageSet set;
  set.images = images.data.reshape({images.dims[0], 784}).to(torch::kFloat32).div_(255.0);
  set.labels = labels.data.to(torch::kInt64);
  return set;
}

FashionMnist load_fashion_mnist(const std::string& dir) {
  FashionMnist data;
  for (const bool train : {true, false}) {
    const std::string prefix = train ? "train" : "t10k";
    const std::string images = find_file(dir, prefix + "-images-idx3-ubyte");
    const std::string labels = find_file(dir, prefix + "-labels-idx1-ubyte");
    (train ? data.train : data.test) = read_image_set(images, labels);
  }
  return data;
}

ImageSet take_first(const ImageSet& set, int64_t count) {
  if (count <= 0 || count >= set.size()) return set;
  return ImageSet{set.images.narrow(/*dim=*/0, /*start=*/0, count),
                  set.labels.narrow(/*dim=*/0, /*start=*/0, count)};
}

}  // namespace septa::nn
