// IDX parsing without libtorch (see idx.h for the format).
#include "nn/data/idx.h"

#include <zlib.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "septa/error.h"

namespace septa::nn {
namespace {

constexpr int kMaxRank = 4;
constexpr size_t kInflateChunk = size_t{1} << 20;

uint32_t big_endian_u32(const unsigned char* bytes) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
         uint32_t{bytes[3]};
}

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// The size of the IDX file whose first bytes are `prefix` as its header declares it; 0 when the
// header is already known to be invalid (parse_plain names the fault); -1 when too short to tell.
int64_t declared_size(std::string_view prefix) {
  const auto* p = reinterpret_cast<const unsigned char*>(prefix.data());
  if (prefix.size() < 4) return -1;
  const int rank = p[3];
  if (p[0] != 0 || p[1] != 0 || p[2] != 0x08 || rank < 1 || rank > kMaxRank) return 0;
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (prefix.size() < header) return -1;
  uint64_t elements = 1;
  for (int d = 0; d < rank; ++d) {
    const uint64_t dim = big_endian_u32(p + 4 + 4 * d);
    if (dim != 0 && elements > kMaxIdxElements / dim) return 0;
    elements *= dim;
  }
  return static_cast<int64_t>(header + elements);
}

// Inflates a gzip stream. The output grows with the data actually decompressed and stops one
// byte past the size the IDX header declares (at most header + kMaxIdxElements), so neither a
// short file nor a compression bomb makes the reader allocate more than the declared array.
std::string gunzip(std::string_view bytes, const std::string& label) {
  uint64_t limit = 4 + 4 * kMaxRank + kMaxIdxElements + 1;
  bool limit_known = false;
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK)
    throw FormatError(label + ":0: cannot start gzip decompression");
  std::string out;
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    if (!limit_known) {
      const int64_t declared = declared_size(out);
      if (declared >= 0) {
        limit_known = true;
        if (declared == 0) break;  // invalid header: parse_plain reports it
        limit = static_cast<uint64_t>(declared) + 1;
      }
    }
    if (out.size() >= limit) break;  // overlong: parse_plain reports the trailing bytes
    const size_t old = out.size();
    const size_t chunk = static_cast<size_t>(
        std::min<uint64_t>(limit_known ? limit - old : 64, kInflateChunk));
    out.resize(old + chunk);
    stream.next_out = reinterpret_cast<Bytef*>(&out[old]);
    stream.avail_out = static_cast<uInt>(chunk);
    status = inflate(&stream, Z_NO_FLUSH);
    out.resize(old + (chunk - stream.avail_out));
    if (status == Z_STREAM_END) break;
    if (status != Z_OK) {
      inflateEnd(&stream);
      throw FormatError(label + ":0: corrupt gzip data" +
                        (status == Z_BUF_ERROR ? std::string(" (truncated)") : std::string()));
    }
  }
  const bool trailing = status == Z_STREAM_END && stream.avail_in != 0;
  inflateEnd(&stream);
  if (trailing) throw FormatError(label + ":0: trailing bytes after the gzip stream");
  return out;
}

IdxArray parse_plain(std::string_view bytes, const std::string& label) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 4)
    throw FormatError(label + ":0: truncated IDX header (" + std::to_string(bytes.size()) +
                      " of 4 bytes)");
  if (p[0] != 0 || p[1] != 0) throw FormatError(label + ":0: not an IDX file (bad magic)");
  if (p[2] != 0x08)
    throw FormatError(label + ":0: IDX element type " + std::to_string(p[2]) +
                      " is not unsigned byte (8)");
  const int rank = p[3];
  if (rank < 1 || rank > kMaxRank)
    throw FormatError(label + ":0: IDX rank " + std::to_string(rank) + " outside [1, 4]");
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (bytes.size() < header)
    throw FormatError(label + ":0: truncated IDX header (" + std::to_string(bytes.size()) + " of " +
                      std::to_string(header) + " bytes)");
  IdxArray array;
  uint64_t elements = 1;
  for (int d = 0; d < rank; ++d) {
    const uint64_t dim = big_endian_u32(p + 4 + 4 * d);
    // elements * dim <= kMaxIdxElements, checked without overflow (dim < 2^32, elements <= 2^32).
    if (dim != 0 && elements > kMaxIdxElements / dim)
      throw FormatError(label + ":0: IDX dimensions too large (more than " +
                        std::to_string(kMaxIdxElements) + " elements)");
    elements *= dim;
    array.dims.push_back(static_cast<int64_t>(dim));
  }
  const uint64_t present = bytes.size() - header;
  if (present < elements)
    throw FormatError(label + ":0: truncated IDX data (the header declares " +
                      std::to_string(elements) + " bytes, the file holds " +
                      std::to_string(present) + ")");
  if (present > elements)
    throw FormatError(label + ":0: " + std::to_string(present - elements) +
                      " trailing bytes after the IDX data");
  array.data.assign(p + header, p + header + elements);
  return array;
}

}  // namespace

IdxArray parse_idx(std::string_view bytes, const std::string& label) {
  if (is_gzip(bytes)) return parse_plain(gunzip(bytes, label), label);
  return parse_plain(bytes, label);
}

IdxArray read_idx(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode))
    throw IoError(path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open");
  std::string bytes;
  bytes.resize(static_cast<size_t>(info.st_size));
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    throw IoError(path + ": read error");
  return parse_idx(bytes, path);
}

}  // namespace septa::nn
