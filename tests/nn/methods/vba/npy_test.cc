// The .npy reader and the (x, y, z) triple reader: round trips, every accepted dtype, and
// malformed files with messages naming the file and the problem.
#include <gtest/gtest.h>

#include <cstring>

#include "nn/methods/vba/data.h"
#include "nn/methods/vba/npy.h"
#include "nn/test_util.h"

namespace septa::nn {
namespace {

// A .npy file by hand: header `dict` padded to 64 bytes, then `data`.
std::string npy(const std::string& dict, const std::string& data, int version = 1) {
  std::string header = dict;
  const size_t prefix = version == 1 ? 10 : 12;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY", 6) + static_cast<char>(version) + '\0';
  const size_t n = header.size();
  bytes += static_cast<char>(n & 0xff);
  bytes += static_cast<char>((n >> 8) & 0xff);
  if (version != 1) bytes += std::string(2, '\0');
  return bytes + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_npy(bytes, "f.npy");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

TEST(Npy, RoundTripOfFloat32AndFloat64) {
  const std::string dir = testing::temp_dir("npy");
  const std::vector<double> values = {1.5, -2.25, 3e-8, 4, 5, 6};
  for (bool float64 : {false, true}) {
    write_npy(dir + "/a.npy", {2, 3}, values, float64);
    const NpyArray a = read_npy(dir + "/a.npy");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(a.dtype, float64 ? "<f8" : "<f4");
    for (size_t i = 0; i < values.size(); ++i)
      EXPECT_EQ(a.data[i], float64 ? values[i] : static_cast<double>(static_cast<float>(values[i])));
  }
  write_npy(dir + "/v.npy", {3}, {1, 2, 3});
  EXPECT_EQ(read_npy(dir + "/v.npy").shape, (std::vector<int64_t>{3}));
}

TEST(Npy, AcceptsNumericDtypesAndVersions) {
  EXPECT_EQ(parse_npy(npy("{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }",
                          raw<int16_t>({-5, 0, 300})))
                .data,
            (std::vector<double>{-5, 0, 300}));
  EXPECT_EQ(parse_npy(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 1), }", "\x07\xff"))
                .data,
            (std::vector<double>{7, 255}));
  EXPECT_EQ(parse_npy(npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }",
                          std::string("\x01\x00", 2)))
                .data,
            (std::vector<double>{1, 0}));
  EXPECT_EQ(parse_npy(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", raw<int64_t>({-7})))
                .data[0],
            -7.0);
  EXPECT_EQ(parse_npy(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", raw<double>({2.5}), 2))
                .data[0],
            2.5);
}

TEST(Npy, MalformedFilesAreRejectedNamingTheProblem) {
  const std::string f4 = raw<float>({1, 2, 3, 4});
  auto has = [](const std::string& message, const std::string& part) {
    const bool found = message.find(part) != std::string::npos;
    if (!found) std::printf("message: %s\n", message.c_str());
    return found;
  };
  EXPECT_TRUE(has(error_of("hello world, not npy"), "f.npy: not a .npy file"));
  EXPECT_TRUE(has(error_of(std::string("\x93NUMPY", 6)), "f.npy: not a .npy file"));
  EXPECT_TRUE(has(error_of(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", f4)), "big-endian"));
  EXPECT_TRUE(has(error_of(npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", f4)),
                  "unsupported npy dtype '<c8'"));
  EXPECT_TRUE(has(error_of(npy("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", "abcdefghijkl")),
                  "unsupported npy dtype"));
  EXPECT_TRUE(has(error_of(npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "abcdefgh")),
                  "unsupported npy dtype"));
  EXPECT_TRUE(has(error_of(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f4)), "Fortran"));
  EXPECT_TRUE(has(error_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", f4)),
                  "truncated npy data: shape (5,) of <f4 needs 20 bytes, file has 16"));
  EXPECT_TRUE(has(error_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f4)),
                  "4 bytes after the npy data"));
  EXPECT_TRUE(has(error_of(npy("{'descr': '<f4', 'fortran_order': False, }", f4)), "no 'shape' entry"));
  EXPECT_TRUE(has(error_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }", f4)),
                  "malformed shape"));
  EXPECT_TRUE(has(error_of(npy("'descr': '<f4'", f4)), "malformed npy header"));
  // A header length beyond the file.
  const std::string cut = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", f4).substr(0, 30);
  EXPECT_TRUE(has(error_of(cut), "truncated npy header"));
  // A shape whose product overflows is refused before anything is allocated.
  EXPECT_TRUE(has(error_of(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (999999999, 999999999), }", f4)),
                  "too large"));
  EXPECT_THROW(read_npy("/nonexistent/x.npy"), IoError);
}

TEST(Triples, ReaderFlattensAndChecksRowsAndValues) {
  const std::string dir = testing::temp_dir("triples");
  write_npy(dir + "/x.npy", {4}, {1, 2, 3, 4});
  write_npy(dir + "/y.npy", {4, 2, 2}, std::vector<double>(16, 0.5));
  write_npy(dir + "/z.npy", {4, 3}, std::vector<double>(12, -1.0));
  const vba::Triples t = vba::read_triples(dir);
  EXPECT_EQ(t.x.sizes(), (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(t.y.sizes(), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(t.z.sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(t.x.scalar_type(), torch::kFloat32);

  auto message = [&] {
    try {
      vba::read_triples(dir);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  write_npy(dir + "/z.npy", {5, 3}, std::vector<double>(15, -1.0));
  EXPECT_NE(message().find(dir + "/z.npy: 5 rows, but x.npy has 4"), std::string::npos) << message();
  write_npy(dir + "/z.npy", {4, 3}, {0, 0, 0, 0, 0, 0, 0, std::nan(""), 0, 0, 0, 0});
  EXPECT_NE(message().find(dir + "/z.npy: row 2 holds a non-finite value"), std::string::npos) << message();
  write_npy(dir + "/z.npy", {}, {1});
  EXPECT_NE(message().find("0-d array"), std::string::npos) << message();
  write_npy(dir + "/z.npy", {0, 3}, {});
  EXPECT_NE(message().find("no rows"), std::string::npos) << message();
  testing::write_file(dir + "/z.npy", npy("{'descr': '<c16', 'fortran_order': False, 'shape': (4,), }",
                                          std::string(64, '\0')));
  EXPECT_NE(message().find(dir + "/z.npy: unsupported npy dtype '<c16'"), std::string::npos) << message();
  std::remove((dir + "/z.npy").c_str());
  EXPECT_THROW(vba::read_triples(dir), IoError);
}

}  // namespace
}  // namespace septa::nn
