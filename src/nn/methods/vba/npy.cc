// The .npy reader and writer (see npy.h for the format).
#include "nn/methods/vba/npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "septa/error.h"
#include "util/atomic_file.h"

namespace septa::nn {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
constexpr int64_t kMaxElements = int64_t{1} << 34;

[[noreturn]] void fail(const std::string& label, const std::string& what) {
  throw FormatError(label + ": " + what);
}

uint64_t little_endian(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The value text of `key` in the header dict: from after "'key':" to the matching end.
std::string dict_value(const std::string& header, const std::string& key, const std::string& label) {
  const std::string quoted[2] = {"'" + key + "'", "\"" + key + "\""};
  size_t at = std::string::npos;
  for (const auto& q : quoted)
    if ((at = header.find(q)) != std::string::npos) {
      at += q.size();
      break;
    }
  if (at == std::string::npos) fail(label, "npy header has no '" + key + "' entry: " + header);
  at = header.find(':', at);
  if (at == std::string::npos) fail(label, "malformed npy header: " + header);
  ++at;
  while (at < header.size() && header[at] == ' ') ++at;
  if (at >= header.size()) fail(label, "malformed npy header: " + header);
  if (header[at] == '(') {
    const size_t end = header.find(')', at);
    if (end == std::string::npos) fail(label, "malformed shape in npy header: " + header);
    return header.substr(at, end - at + 1);
  }
  if (header[at] == '\'' || header[at] == '"') {
    const size_t end = header.find(header[at], at + 1);
    if (end == std::string::npos) fail(label, "malformed npy header: " + header);
    return header.substr(at + 1, end - at - 1);
  }
  size_t end = at;
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  return header.substr(at, end - at);
}

std::vector<int64_t> parse_shape(const std::string& text, const std::string& label) {
  std::vector<int64_t> shape;
  size_t i = 1;  // after '('
  while (i < text.size() - 1) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i >= text.size() - 1) break;
    size_t end = i;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == i || end - i > 12) fail(label, "malformed shape " + text + " in npy header");
    shape.push_back(std::stoll(text.substr(i, end - i)));
    i = end;
  }
  return shape;
}

struct ElementType {
  char kind;  // 'f', 'i', 'u', 'b'
  int size;   // bytes
};

ElementType element_type(const std::string& descr, const std::string& label) {
  if (descr.size() < 3) fail(label, "unsupported npy dtype '" + descr + "'");
  const char order = descr[0];
  const char kind = descr[1];
  const std::string digits = descr.substr(2);
  int size = 0;
  if (digits == "1") size = 1;
  else if (digits == "2") size = 2;
  else if (digits == "4") size = 4;
  else if (digits == "8") size = 8;
  const bool known = (kind == 'f' && (size == 4 || size == 8)) ||
                     ((kind == 'i' || kind == 'u') && size > 0) || (kind == 'b' && size == 1);
  if (!known)
    fail(label, "unsupported npy dtype '" + descr +
                    "' (expected float32/float64, integers or bool; e.g. '<f4')");
  if (order == '>' && size > 1)
    fail(label, "big-endian npy dtype '" + descr + "' is not supported (save with '<' order)");
  if (order != '<' && order != '|' && order != '=' && !(order == '>' && size == 1))
    fail(label, "unsupported npy dtype '" + descr + "'");
  return {kind, size};
}

double element(const unsigned char* p, const ElementType& type) {
  const uint64_t bits = little_endian(p, type.size);
  switch (type.kind) {
    case 'f':
      if (type.size == 4) {
        float f;
        const uint32_t b = static_cast<uint32_t>(bits);
        std::memcpy(&f, &b, 4);
        return f;
      } else {
        double d;
        std::memcpy(&d, &bits, 8);
        return d;
      }
    case 'u':
      return static_cast<double>(bits);
    case 'b':
      return bits != 0 ? 1.0 : 0.0;
    default: {  // 'i': sign-extend
      const int shift = 64 - 8 * type.size;
      return static_cast<double>(static_cast<int64_t>(bits << shift) >> shift);
    }
  }
}

}  // namespace

NpyArray parse_npy(std::string_view bytes, const std::string& label) {
  if (bytes.size() < kMagicSize + 4 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0)
    fail(label, "not a .npy file (no \\x93NUMPY magic)");
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  const int major = u[6];
  if (major < 1 || major > 3) fail(label, "unsupported npy version " + std::to_string(major));
  const int length_bytes = major == 1 ? 2 : 4;
  const size_t start = 8 + length_bytes;
  if (bytes.size() < start) fail(label, "truncated npy header");
  const uint64_t header_length = little_endian(u + 8, length_bytes);
  if (header_length > bytes.size() - start) fail(label, "truncated npy header");
  const std::string header(bytes.substr(start, header_length));
  if (header.find('{') == std::string::npos || header.find('}') == std::string::npos)
    fail(label, "malformed npy header: " + header);
  NpyArray array;
  array.dtype = dict_value(header, "descr", label);
  const ElementType type = element_type(array.dtype, label);
  const std::string fortran = dict_value(header, "fortran_order", label);
  if (fortran.rfind("True", 0) == 0)
    fail(label, "Fortran-order npy arrays are not supported (save with np.ascontiguousarray)");
  if (fortran.rfind("False", 0) != 0) fail(label, "malformed fortran_order in npy header");
  const std::string shape_text = dict_value(header, "shape", label);
  if (shape_text.empty() || shape_text[0] != '(') fail(label, "malformed shape in npy header");
  array.shape = parse_shape(shape_text, label);
  int64_t count = 1;
  for (int64_t d : array.shape) {
    if (d > 0 && count > kMaxElements / d) fail(label, "npy array too large");
    count *= d;
  }
  const size_t data_start = start + header_length;
  const uint64_t expected = static_cast<uint64_t>(count) * type.size;
  const uint64_t present = bytes.size() - data_start;
  if (present < expected)
    fail(label, "truncated npy data: shape " + shape_text + " of " + array.dtype + " needs " +
                    std::to_string(expected) + " bytes, file has " + std::to_string(present));
  if (present > expected)
    fail(label, std::to_string(present - expected) + " bytes after the npy data of shape " +
                    shape_text);
  array.data.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) array.data[i] = element(u + data_start + i * type.size, type);
  return array;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError(path + ": read error");
  return parse_npy(bytes, path);
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape,
               const std::vector<double>& data, bool float64) {
  int64_t count = 1;
  std::string shape_text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    count *= shape[i];
    shape_text += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    if (i + 1 < shape.size()) shape_text += " ";
  }
  shape_text += ")";
  if (count != static_cast<int64_t>(data.size()))
    throw InternalError("write_npy: shape does not match the data size");
  std::string header = std::string("{'descr': '") + (float64 ? "<f8" : "<f4") +
                       "', 'fortran_order': False, 'shape': " + shape_text + ", }";
  const size_t unpadded = kMagicSize + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string bytes(kMagic, kMagicSize);
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>((header.size() >> 8) & 0xff);
  bytes += header;
  for (double v : data) {
    if (float64) {
      char b[8];
      std::memcpy(b, &v, 8);
      bytes.append(b, 8);
    } else {
      const float f = static_cast<float>(v);
      char b[4];
      std::memcpy(b, &f, 4);
      bytes.append(b, 4);
    }
  }
  write_file_atomically(path, bytes);
}

}  // namespace septa::nn
