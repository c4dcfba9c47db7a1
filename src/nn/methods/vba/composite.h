// The Fashion-MNIST composite (docs/vba.md; the paper's binarised-MNIST experiment):
//   Z = an image of class c,  X = an image of class (c + 1) mod 10 (the confounding),
//   Y = a 28x28 image whose left half is Z rotated by U(-30, 30) degrees and squeezed to 28x14,
//       and whose right half is the same for X;
// all three binarised by Bernoulli sampling of the pixel intensities. Images are flat [N][784].
#pragma once

#include <torch/torch.h>

#include "nn/data/dataset.h"
#include "nn/methods/vba/linear_gaussian.h"
#include "septa/nn/vba.h"

namespace septa::nn::vba {

inline constexpr int64_t kSide = 28;
inline constexpr int64_t kPixels = kSide * kSide;

struct Composite {
  Triples data;          // binarised x, y, z [N][784] float32
  torch::Tensor z_class; // [N] int64
  torch::Tensor x_class; // [N] int64
};

// Intensities [B][784] of the two halves side by side: left from `left`, right from `right`
// ([B][784] each), each rotated by its own angle and squeezed to 28 rows x 14 columns (bilinear
// rotation by affine_grid / grid_sample, then the mean of column pairs).
torch::Tensor compose_halves(const torch::Tensor& left, const torch::Tensor& right,
                             torch::Generator generator);

// The left half of images [B][784] -> [B][392] (28 rows x 14 columns).
torch::Tensor left_half(const torch::Tensor& images);

// n observational rows from `images` (intensities in [0, 1], labels 0..9).
Composite observational_composite(const Dataset& images, int64_t n, torch::Generator generator);

// n rows of one interventional cell: x of class x_class, z of class z_class drawn independently.
Composite cell_composite(const Dataset& images, int64_t x_class, int64_t z_class, int64_t n,
                         torch::Generator generator);

// Binarises intensities by Bernoulli sampling.
torch::Tensor binarise(const torch::Tensor& intensities, torch::Generator generator);

// Writes DIR/train and DIR/test (GenerateConfig in septa/nn/vba.h).
void generate_fashion_composite(const GenerateConfig& config);

}  // namespace septa::nn::vba
