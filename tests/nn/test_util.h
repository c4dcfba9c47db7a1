// Helpers shared by the nn tests: temporary directories, seeded torch, generated IDX data.
#pragma once

#include <torch/torch.h>
#include <zlib.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "septa/nn/nn.h"

namespace septa::nn::testing {

using Bytes = std::vector<unsigned char>;

// A fresh empty directory under $TMPDIR (or /tmp), unique per process and name.
inline std::string temp_dir(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/septa_nn_" + name + "_XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  if (!made) throw std::runtime_error("mkdtemp failed");
  return made;
}

// Single-threaded, seeded torch: tests run side by side under ctest -j.
inline void setup_torch(uint64_t seed = 7) {
  set_threads(1);
  torch::manual_seed(seed);
}

inline Bytes idx_header(unsigned char type, const std::vector<uint32_t>& dims) {
  Bytes bytes = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back((d >> shift) & 0xff);
  return bytes;
}

inline Bytes idx_file(const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes bytes = idx_header(0x08, dims);
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

inline void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  if (!file) throw std::runtime_error("gzopen failed");
  gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(file);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A tiny Fashion-MNIST-shaped directory (gzip IDX, 28x28): class c brightens rows 2c+4..2c+6.
inline void write_dataset(const std::string& dir, uint32_t n_train, uint32_t n_test) {
  unsigned seed = 5;
  for (const auto& [split, n] :
       {std::pair<std::string, uint32_t>{"train", n_train}, {"t10k", n_test}}) {
    Bytes images = idx_header(0x08, {n, 28, 28});
    Bytes labels = idx_header(0x08, {n});
    for (uint32_t i = 0; i < n; ++i) {
      const int c = static_cast<int>(rand_r(&seed) % 10);
      labels.push_back(static_cast<unsigned char>(c));
      for (int p = 0; p < 784; ++p) {
        const int row = p / 28;
        const bool bright = row >= 2 * c + 4 && row < 2 * c + 7;
        images.push_back(static_cast<unsigned char>(rand_r(&seed) % 80 + (bright ? 150 : 0)));
      }
    }
    write_gzip(dir + "/" + split + "-images-idx3-ubyte.gz", images);
    write_gzip(dir + "/" + split + "-labels-idx1-ubyte.gz", labels);
  }
}

}  // namespace septa::nn::testing
