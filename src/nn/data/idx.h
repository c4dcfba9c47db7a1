// IDX arrays of unsigned bytes (the MNIST / Fashion-MNIST file format), parsed without libtorch
// so that a fuzzer can link this file alone (fuzz/ builds it with zlib only).
//
// IDX format (LeCun, http://yann.lecun.com/exdb/mnist/): a big-endian header
//   bytes 0-1 zero, byte 2 the element type (0x08 = unsigned byte), byte 3 the rank R,
//   then R big-endian uint32 dimensions, then prod(dims) elements in row-major order.
// Files may be gzip-compressed (Debian's dataset-fashion-mnist ships them so).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace septa::nn {

struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {N, 28, 28} for images, {N} for labels
  std::vector<uint8_t> data;  // [prod(dims)] row-major
};

// Largest element count accepted (4 GiB): larger arrays are refused before anything is allocated.
inline constexpr uint64_t kMaxIdxElements = uint64_t{1} << 32;

// Parses IDX bytes, plain or gzip (detected by the gzip magic 1f 8b). The header is checked
// against the bytes actually present before the data is copied, so a short file that declares a
// huge array allocates nothing. FormatError "<label>:0: ..." for malformed, truncated, overlong or
// corrupt-gzip input.
IdxArray parse_idx(std::string_view bytes, const std::string& label = "<memory>");

// Reads and parses `path`; IoError when it is missing or unreadable, FormatError as parse_idx.
IdxArray read_idx(const std::string& path);

}  // namespace septa::nn
