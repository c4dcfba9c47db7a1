// NumPy .npy arrays: the exchange format for user data (x.npy, y.npy, z.npy) and query results.
// Parsed without libtorch.
//
// Format (numpy.lib.format, versions 1.0-3.0): magic "\x93NUMPY", major, minor, a little-endian
// header length (uint16 for 1.0, uint32 for 2.0/3.0), then an ASCII Python dict
//   {'descr': '<f4', 'fortran_order': False, 'shape': (N, F), }
// padded with spaces to a multiple of 16 (64 in later numpy) and ended by '\n', then
// prod(shape) elements in C order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace septa::nn {

struct NpyArray {
  std::vector<int64_t> shape;  // () for a scalar
  std::vector<double> data;    // [prod(shape)] C order, converted from the stored dtype
  std::string dtype;           // the stored descr: "<f4", "<f8", "|u1", "|b1", "<i8", ...
};

// Element types accepted: float32/64, (u)int8/16/32/64, bool, little-endian or byte-sized.
// FormatError "<label>: ..." naming the problem (bad magic, unsupported dtype such as '>f4' or
// '<c8', Fortran order, malformed header, data shorter or longer than the shape declares).
NpyArray parse_npy(std::string_view bytes, const std::string& label = "<memory>");

// Reads `path`; IoError when missing or unreadable, FormatError as parse_npy.
NpyArray read_npy(const std::string& path);

// Writes a C-order '<f4' (float32) or '<f8' array (version 1.0) through a temporary file and a
// rename. IoError naming `path` on failure.
void write_npy(const std::string& path, const std::vector<int64_t>& shape,
               const std::vector<double>& data, bool float64 = false);

}  // namespace septa::nn
