// Fashion-MNIST from Debian's dataset-fashion-mnist files (gzip IDX, also plain IDX).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace septa::nn {

// One IDX array: an unsigned-byte tensor with the shape stored in the file header.
struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {N, 28, 28} for images, {N} for labels
  torch::Tensor data;         // [dims...] uint8
};

// Reads an IDX file of unsigned bytes (gzip or plain); IoError if unreadable, FormatError if malformed.
IdxArray read_idx(const std::string& path);

// A labelled image set, pixels scaled to [0, 1].
struct ImageSet {
  torch::Tensor images;  // [N][784] float32 in [0, 1]
  torch::Tensor labels;  // [N] int64 in [0, 10)
  int64_t size() const { return labels.size(0); }
};

// Both splits of Fashion-MNIST.
struct FashionMnist {
  ImageSet train;  // 60000 images
  ImageSet test;   // 10000 images
};

// The default data directory of Debian's dataset-fashion-mnist package.
inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Reads images and labels, checking that they agree; throws IoError / FormatError naming the file.
ImageSet read_image_set(const std::string& images_path, const std::string& labels_path);

// Loads both splits from `dir` (train-images-idx3-ubyte[.gz], ...); IoError names a missing file.
FashionMnist load_fashion_mnist(const std::string& dir);

// The first `count` examples of `set` (all when count <= 0 or count >= size).
ImageSet take_first(const ImageSet& set, int64_t count);

}  // namespace septa::nn
